"""The bundled sample database: construction projects, companies and contacts in the eight
customer markets (SE, DK, NO, FI, DE, FR, CZ, SK).

Generated deterministically (seeded) the first time it is needed, into `<data_dir>/sample.db`.
Dates are laid out around the current year so questions like "which projects start this
year?" always have answers; the file is rebuilt when the year changes.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SEED = 20260525
FILE_NAME = "sample.db"

MARKETS: dict[str, list[tuple[str, str]]] = {
    "SE": [("Stockholm", "Stockholm"), ("Solna", "Stockholm"), ("Göteborg", "Västra Götaland"), ("Malmö", "Skåne"), ("Uppsala", "Uppsala"), ("Umeå", "Västerbotten")],
    "DK": [("København", "Hovedstaden"), ("Aarhus", "Midtjylland"), ("Odense", "Syddanmark"), ("Aalborg", "Nordjylland")],
    "NO": [("Oslo", "Oslo"), ("Bergen", "Vestland"), ("Trondheim", "Trøndelag"), ("Stavanger", "Rogaland")],
    "FI": [("Helsinki", "Uusimaa"), ("Tampere", "Pirkanmaa"), ("Turku", "Varsinais-Suomi"), ("Oulu", "Pohjois-Pohjanmaa")],
    "DE": [("Berlin", "Berlin"), ("Hamburg", "Hamburg"), ("München", "Bayern"), ("Köln", "Nordrhein-Westfalen")],
    "FR": [("Paris", "Île-de-France"), ("Lyon", "Auvergne-Rhône-Alpes"), ("Lille", "Hauts-de-France"), ("Bordeaux", "Nouvelle-Aquitaine")],
    "CZ": [("Praha", "Praha"), ("Brno", "Jihomoravský kraj"), ("Ostrava", "Moravskoslezský kraj")],
    "SK": [("Bratislava", "Bratislavský kraj"), ("Košice", "Košický kraj"), ("Žilina", "Žilinský kraj")],
}  # fmt: skip
CATEGORIES = ("hospital", "school", "housing", "office", "road", "bridge", "industrial", "retail")
STAGES = ("planning", "tender", "construction", "completed")
REGIONS = tuple(sorted({region for places in MARKETS.values() for _, region in places}))

_NOUNS: dict[str, dict[str, str]] = {
    "SE": {"hospital": "Sjukhus", "school": "Skola", "housing": "Bostäder", "office": "Kontorshus", "road": "Väg", "bridge": "Bro", "industrial": "Industrihall", "retail": "Handelscentrum"},
    "DK": {"hospital": "Hospital", "school": "Skole", "housing": "Boliger", "office": "Kontorhus", "road": "Vej", "bridge": "Bro", "industrial": "Industrihal", "retail": "Butikscenter"},
    "NO": {"hospital": "Sykehus", "school": "Skole", "housing": "Boliger", "office": "Kontorbygg", "road": "Vei", "bridge": "Bru", "industrial": "Industribygg", "retail": "Kjøpesenter"},
    "FI": {"hospital": "Sairaala", "school": "Koulu", "housing": "Asunnot", "office": "Toimistotalo", "road": "Tie", "bridge": "Silta", "industrial": "Teollisuushalli", "retail": "Kauppakeskus"},
    "DE": {"hospital": "Klinikum", "school": "Schule", "housing": "Wohnquartier", "office": "Bürohaus", "road": "Straße", "bridge": "Brücke", "industrial": "Werkhalle", "retail": "Einkaufszentrum"},
    "FR": {"hospital": "Hôpital", "school": "École", "housing": "Résidence", "office": "Immeuble de bureaux", "road": "Route", "bridge": "Pont", "industrial": "Usine", "retail": "Centre commercial"},
    "CZ": {"hospital": "Nemocnice", "school": "Škola", "housing": "Bytový dům", "office": "Administrativní budova", "road": "Silnice", "bridge": "Most", "industrial": "Výrobní hala", "retail": "Obchodní centrum"},
    "SK": {"hospital": "Nemocnica", "school": "Škola", "housing": "Bytový dom", "office": "Administratívna budova", "road": "Cesta", "bridge": "Most", "industrial": "Výrobná hala", "retail": "Obchodné centrum"},
}  # fmt: skip
_FIRST = (
    "Anna",
    "Erik",
    "Lars",
    "Maria",
    "Jonas",
    "Sofia",
    "Mikkel",
    "Ingrid",
    "Jukka",
    "Aino",
    "Lukas",
    "Lea",
    "Julien",
    "Camille",
    "Jan",
    "Petra",
    "Martin",
    "Zuzana",
    "Karin",
    "Ola",
)
_LAST = (
    "Lindqvist",
    "Berg",
    "Nielsen",
    "Hansen",
    "Johansen",
    "Virtanen",
    "Korhonen",
    "Müller",
    "Schmidt",
    "Dubois",
    "Martin",
    "Novák",
    "Dvořák",
    "Horváth",
    "Kováč",
    "Nyström",
    "Dahl",
    "Laine",
    "Weber",
    "Bernard",
)
_COMPANY_WORDS = (
    "Bygg",
    "Construct",
    "Nordic",
    "Holding",
    "Invest",
    "Projekt",
    "Infra",
    "Fastigheter",
    "Development",
    "Partners",
)
_COMPANY_TYPES = ("developer", "contractor", "architect", "public_authority", "engineering")
_ROLES = ("project manager", "procurement lead", "site manager", "chief executive", "architect")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE companies (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, city TEXT NOT NULL,
    country TEXT NOT NULL, org_number TEXT NOT NULL
);
CREATE TABLE projects (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, category TEXT NOT NULL, stage TEXT NOT NULL,
    value_eur INTEGER NOT NULL, country TEXT NOT NULL, region TEXT NOT NULL, city TEXT NOT NULL,
    start_date TEXT NOT NULL, end_date TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES companies(id),
    contractor_id TEXT REFERENCES companies(id), description TEXT NOT NULL
);
CREATE TABLE contacts (
    id TEXT PRIMARY KEY, company_id TEXT NOT NULL REFERENCES companies(id), name TEXT NOT NULL,
    role TEXT NOT NULL, email TEXT NOT NULL, phone TEXT NOT NULL
);
CREATE INDEX ix_projects_city ON projects(city);
CREATE INDEX ix_projects_category ON projects(category);
"""


def _companies(rng: random.Random) -> list[tuple[str, ...]]:
    rows = []
    for i in range(80):
        country = list(MARKETS)[i % len(MARKETS)]
        city, _ = rng.choice(MARKETS[country])
        name = f"{rng.choice(_LAST)} {rng.choice(_COMPANY_WORDS)} {'AB' if country == 'SE' else 'A/S' if country in ('DK', 'NO') else 'Oy' if country == 'FI' else 'GmbH' if country == 'DE' else 'SAS' if country == 'FR' else 's.r.o.'}"
        ctype = _COMPANY_TYPES[i % len(_COMPANY_TYPES)]
        rows.append(
            (f"CMP-{i + 1:03d}", name, ctype, city, country, f"{rng.randrange(10**9, 10**10)}")
        )
    return rows


def _contacts(rng: random.Random, companies: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    rows = []
    for i in range(160):
        company = companies[i % len(companies)]
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        domain = (
            company[1]
            .split()[0]
            .lower()
            .translate(str.maketrans("åäöæøüéčšžýřáíďťňľ", "aaoaoueeszyraidtnl"))
        )
        rows.append(
            (
                f"CON-{i + 1:03d}",
                company[0],
                f"{first} {last}",
                _ROLES[i % len(_ROLES)],
                f"{first.lower()}.{last.lower()}@{domain}.example",
                f"+{rng.randrange(30, 49)} {rng.randrange(100, 999)} {rng.randrange(100000, 999999)}",
            )
        )
    return rows


def _projects(
    rng: random.Random, companies: list[tuple[str, ...]], year: int
) -> list[tuple[object, ...]]:
    owners = [c for c in companies if c[2] in ("developer", "public_authority")]
    contractors = [c for c in companies if c[2] == "contractor"]
    anchors = [
        ("SE", "Stockholm", "Stockholm", "hospital", "Södersjukhuset ny vårdbyggnad"),
        ("SE", "Solna", "Stockholm", "hospital", "Karolinska Solna etapp 3"),
        ("SE", "Stockholm", "Stockholm", "hospital", "Danderyds sjukhus akutbyggnad"),
    ]
    rows: list[tuple[object, ...]] = []
    for i in range(240):
        if i < len(anchors):
            country, city, region, category, title = anchors[i]
            start = date(year, 2 + 3 * i, 1 + 7 * i)
            stage = "tender"
        else:
            country = list(MARKETS)[i % len(MARKETS)]
            city, region = rng.choice(MARKETS[country])
            category = CATEGORIES[rng.randrange(len(CATEGORIES))]
            title = f"{_NOUNS[country][category]} {city} {rng.choice(('Nord', 'Syd', 'Centrum', 'Park', 'Port', 'Hamn', 'Väst', 'Öst'))} {rng.randrange(1, 5)}"
            start = date(year - 1, 1, 1) + timedelta(days=rng.randrange(0, 3 * 365))
            stage = STAGES[min(3, max(0, (start.year - year) * -1 + rng.randrange(0, 2)))]
        end = start + timedelta(days=rng.randrange(300, 1100))
        value = (
            rng.randrange(2, 400) * 1_000_000
            if category != "hospital"
            else rng.randrange(80, 900) * 1_000_000
        )
        owner = rng.choice([c for c in owners if c[4] == country] or owners)
        local = [c for c in contractors if c[4] == country] or contractors
        contractor = rng.choice(local)[0] if stage in ("construction", "completed") else None
        description = f"{category.capitalize()} project in {city} ({region}), {value // 1_000_000} MEUR, {stage}."
        rows.append(
            (f"P-{i + 1:04d}", title, category, stage, value, country, region, city,
             start.isoformat(), end.isoformat(), owner[0], contractor, description)
        )  # fmt: skip
    return rows


def build(path: Path, year: int) -> None:
    """Write the sample database for YEAR to PATH (atomically: a temp file, then rename)."""
    rng = random.Random(SEED)
    companies = _companies(rng)
    contacts = _contacts(rng, companies)
    projects = _projects(rng, companies, year)
    # a temp file of this builder's own: concurrent first uses each build, the last rename wins
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('year', ?)", (str(year),))
        conn.executemany("INSERT INTO companies VALUES (?,?,?,?,?,?)", companies)
        conn.executemany("INSERT INTO contacts VALUES (?,?,?,?,?,?)", contacts)
        conn.executemany("INSERT INTO projects VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", projects)
        conn.commit()
    finally:
        conn.close()
    tmp.replace(path)


def ensure(data_dir: Path) -> Path:
    """The sample database under DATA_DIR, built (or rebuilt for a new year) when needed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / FILE_NAME
    year = datetime.now(UTC).year
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'year'").fetchone()
        except sqlite3.DatabaseError:
            row = None
        finally:
            conn.close()
        if row is not None and row[0] == str(year):
            return path
    build(path, year)
    return path


@contextmanager
def connect(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the sample database (rows as sqlite3.Row), closed on exit."""
    conn = sqlite3.connect(f"file:{ensure(data_dir)}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


def format_value(value_eur: int) -> str:
    return f"EUR {value_eur / 1_000_000:.0f} M"
