"""PII detection with checksum validation: a number is reported only when its structure and
check digits are valid, so order numbers, dates, prices and project ids are left alone.

Kinds (`PII_KINDS`) and what is validated:

- `email` — address syntax.
- `phone` — international (`+46 70 123 45 67`, `0046…`: 8–15 digits); national numbers with a
  trunk `0` (SE, FI, DE, FR, SK, CZ mobile: `070-123 45 67`, `040 123 4567`, `030 12345678`,
  `06 12 34 56 78`) when grouped with separators or next to a phone word; numbers without a
  trunk prefix (NO/DK 8 digits, CZ/SK 9) only next to a phone word ("tel", "tlf", "puh", …).
  Date-shaped strings are never phones.
- `iban` — country code with its registered length, mod-97 = 1.
- `payment_card` — 13–19 digits, consistent grouping, a known brand prefix (Visa, Mastercard,
  Amex, Discover, JCB, Diners, UnionPay, Maestro) and the Luhn check.
- `se_personnummer` — YYMMDD(-|+)NNNC or YYYYMMDDNNNC, valid date (samordningsnummer day+60
  accepted), Luhn.
- `no_fodselsnummer` — DDMMYY + 5 digits, valid date (D-/H-numbers accepted), both mod-11
  check digits.
- `dk_cpr` — DDMMYY-SSSS with a valid date (century from the 7th digit). Since 2007 CPR numbers
  need not satisfy the old mod-11 check, so it is not required: a hyphenated number with a valid
  date is reported (score 0.75, 0.9 when mod-11 also holds); an unhyphenated one only when
  mod-11 holds or the word "CPR" is near.
- `fi_henkilotunnus` — DDMMYY, century sign (+, -, A–F, U–Y), 002–899, mod-31 check character.
- `de_steuer_id` — 11 digits, no leading 0, the digit-repetition rule, ISO 7064 MOD 11,10.
- `fr_nir` — 15 characters (Corsica 2A/2B), valid month, key = 97 − (number mod 97).
- `cz_sk_rodne_cislo` — YYMMDD/XXXX (10 digits; month +50/+20/+70 accepted), valid date,
  divisible by 11 (or the pre-1985 remainder-10 rule). Nine-digit pre-1954 numbers carry no
  check and are not reported.

Overlapping findings are resolved to the highest score.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date

from keel.control.findings import Finding, GuardrailContext

PII_KINDS: tuple[str, ...] = (
    "email",
    "iban",
    "payment_card",
    "se_personnummer",
    "no_fodselsnummer",
    "dk_cpr",
    "fi_henkilotunnus",
    "de_steuer_id",
    "fr_nir",
    "cz_sk_rodne_cislo",
    "phone",
)

_PHONE_WORDS = re.compile(
    r"(?:tel|tlf|phone|telefon|telephone|téléphone|tél|mobil|mobile|mob|cell|gsm|puh|puhelin|"
    r"handy|portable|fax|call|ring|nummer|number|numéro|číslo|cislo)\w*\.?\s*[:#]?\s*(?:nr\.?|no\.?)?\s*$",
    re.IGNORECASE,
)


def _near_word(text: str, start: int, pattern: re.Pattern[str], window: int = 25) -> bool:
    return bool(pattern.search(text[max(0, start - window) : start]))


def _finding(kind: str, score: float, m: re.Match[str] | tuple[int, int], why: str) -> Finding:
    start, end = m.span() if isinstance(m, re.Match) else m
    return Finding(kind, f"pii.{kind}", score, start, end, why)


def _valid_date(year: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]


def _valid_date_2digit(yy: int, month: int, day: int) -> bool:
    """Date check when the century is unknown: accept it if valid in either century."""
    return _valid_date(1900 + yy, month, day) or _valid_date(2000 + yy, month, day)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- email -------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)


def _emails(text: str) -> Iterator[Finding]:
    for m in _EMAIL.finditer(text):
        yield _finding("email", 0.95, m, "email address")


# --- phone -------------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+/.,-])(?:\+|00)?(?:\(\d{1,5}\)[ ]?)?\d(?:[ \-./]?\(?\d\)?){5,17}(?![\w/-])"
)
_DATE_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{2}:\d{2}")


def _phones(text: str) -> Iterator[Finding]:
    for m in _PHONE.finditer(text):
        raw = m.group(0)
        if _DATE_SHAPE.search(raw):
            continue
        digits = re.sub(r"\D", "", raw)
        grouped = bool(re.search(r"[ \-./()]", raw))
        near = _near_word(text, m.start(), _PHONE_WORDS)
        if raw.startswith(("+", "00")):
            national = digits[2:] if raw.startswith("00") else digits
            plausible = raw.startswith("+") or grouped or near  # "0012345678" is an order number
            if plausible and 8 <= len(national) <= 15 and national[0] != "0":
                yield _finding("phone", 0.9, m, "international phone number")
        elif raw.startswith("0") and len(digits) >= 2 and digits[1] != "0":
            if 9 <= len(digits) <= 12 and (grouped or near):
                yield _finding("phone", 0.8 if near else 0.7, m, "national phone number")
        elif near and len(digits) in (8, 9):
            yield _finding("phone", 0.65, m, "phone number (no trunk prefix)")


# --- IBAN --------------------------------------------------------------------------------

_IBAN_TABLE = (
    "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 "
    "DO28 EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 "
    "IQ23 IS26 IT27 JO30 KW30 KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 "
    "MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 RS22 SA24 SC31 SE24 SI19 SK24 SM27 "
    "ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20"
)
IBAN_LENGTHS: dict[str, int] = {
    m.group(1): int(m.group(2)) for m in re.finditer(r"([A-Z]{2})(\d{2})", _IBAN_TABLE)
}
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})\d{2}")


def iban_ok(iban: str) -> bool:
    if IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _ibans(text: str) -> Iterator[Finding]:
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        chars, pos = list(m.group(0)), m.end()
        while len(chars) < length and pos < len(text):
            ch = text[pos]
            if ch.isascii() and (ch.isdigit() or ch.isupper()):
                chars.append(ch)
            elif not (ch == " " and pos + 1 < len(text) and text[pos + 1].isalnum()):
                break
            pos += 1
        complete = len(chars) == length and not (pos < len(text) and text[pos].isalnum())
        if complete and iban_ok("".join(chars)):
            yield _finding("iban", 0.95, (m.start(), pos), "IBAN (mod-97 valid)")


# --- payment cards -----------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)")


def _card_brand_ok(digits: str) -> bool:
    n = len(digits)
    two, three, four, six = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    return (
        (digits[0] == "4" and n in (13, 16, 19))
        or ((51 <= two <= 55 or 2221 <= four <= 2720) and n == 16)
        or (two in (34, 37) and n == 15)
        or (
            (four == 6011 or 644 <= three <= 649 or two == 65 or 622126 <= six <= 622925)
            and 16 <= n <= 19
        )
        or (3528 <= four <= 3589 and 16 <= n <= 19)
        or ((300 <= three <= 305 or two in (36, 38, 39)) and 14 <= n <= 19)
        or (two == 62 and 16 <= n <= 19)
        or ((two == 50 or 56 <= two <= 69) and 12 <= n <= 19)
    )


def _cards(text: str) -> Iterator[Finding]:
    for m in _CARD.finditer(text):
        raw = m.group(0)
        separators = set(re.sub(r"\d", "", raw))
        if len(separators) > 1:
            continue
        digits = re.sub(r"\D", "", raw)
        if 13 <= len(digits) <= 19 and _card_brand_ok(digits) and luhn_ok(digits):
            yield _finding("payment_card", 0.9, m, "payment card number (Luhn valid)")


# --- national ids ------------------------------------------------------------------------

_SE = re.compile(r"(?<![\w-])(\d{2})?(\d{2})(\d{2})(\d{2})([-+]?)(\d{3})(\d)(?![\w-])")


def _se(text: str) -> Iterator[Finding]:
    for m in _SE.finditer(text):
        century, yy, mm, dd, sep, serial, check = m.groups()
        day = int(dd) - 60 if int(dd) > 60 else int(dd)
        if century is not None and century not in ("18", "19", "20"):
            continue
        valid = (
            _valid_date(int(century + yy), int(mm), day)
            and date(int(century + yy), int(mm), day) <= date.today()  # nobody is born later
            if century
            else _valid_date_2digit(int(yy), int(mm), day)
        )
        if valid and luhn_ok(yy + mm + dd + serial + check):
            yield _finding(
                "se_personnummer", 0.95 if sep or century else 0.85, m, "Swedish personnummer"
            )


_NO = re.compile(r"(?<![\w-])(\d{2})(\d{2})(\d{2}) ?(\d{5})(?![\w-])")
_NO_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_NO_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


def no_fodselsnummer_ok(digits: str) -> bool:
    d = [int(c) for c in digits]
    k1 = 11 - sum(w * x for w, x in zip(_NO_W1, d[:9], strict=True)) % 11
    k1 = 0 if k1 == 11 else k1
    k2 = 11 - sum(w * x for w, x in zip(_NO_W2, d[:10], strict=True)) % 11
    k2 = 0 if k2 == 11 else k2
    return k1 != 10 and k2 != 10 and d[9] == k1 and d[10] == k2


def _no(text: str) -> Iterator[Finding]:
    for m in _NO.finditer(text):
        dd, mm, yy, rest = m.groups()
        day, month = int(dd), int(mm)
        day = day - 40 if day > 40 else day  # D-number
        month = (
            month - 40 if 40 < month <= 52 else month - 80 if month > 80 else month
        )  # H / synthetic
        if _valid_date_2digit(int(yy), month, day) and no_fodselsnummer_ok(dd + mm + yy + rest):
            yield _finding("no_fodselsnummer", 0.9, m, "Norwegian fødselsnummer")


_DK = re.compile(r"(?<![\w-])(\d{2})(\d{2})(\d{2})(-?)(\d{4})(?![\w-])")
_DK_W = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)
_CPR_WORD = re.compile(r"cpr", re.IGNORECASE)


def _dk_century(yy: int, seventh: int) -> int:
    if seventh <= 3:
        return 1900
    if seventh in (4, 9):
        return 2000 if yy <= 36 else 1900
    return 2000 if yy <= 57 else 1800


def _dk(text: str) -> Iterator[Finding]:
    for m in _DK.finditer(text):
        dd, mm, yy, sep, serial = m.groups()
        year = _dk_century(int(yy), int(serial[0])) + int(yy)
        if not _valid_date(year, int(mm), int(dd)):
            continue
        digits = dd + mm + yy + serial
        mod11 = sum(w * int(c) for w, c in zip(_DK_W, digits, strict=True)) % 11 == 0
        if mod11:
            yield _finding("dk_cpr", 0.9, m, "Danish CPR number (mod-11 valid)")
        elif sep or _near_word(text, m.start(), _CPR_WORD, 15):
            yield _finding("dk_cpr", 0.75, m, "Danish CPR number (valid date; mod-11 not required)")


_FI = re.compile(r"(?<![\w-])(\d{2})(\d{2})(\d{2})([-+A-FU-Y])(\d{3})([0-9A-Y])(?![\w-])")
_FI_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_FI_CENTURY = {
    "+": 1800,
    "-": 1900,
    **dict.fromkeys("UVWXY", 1900),
    **dict.fromkeys("ABCDEF", 2000),
}


def _fi(text: str) -> Iterator[Finding]:
    for m in _FI.finditer(text):
        dd, mm, yy, sign, serial, check = m.groups()
        if not 2 <= int(serial) <= 899:
            continue
        if not _valid_date(_FI_CENTURY[sign] + int(yy), int(mm), int(dd)):
            continue
        if _FI_CHECK[int(dd + mm + yy + serial) % 31] == check:
            yield _finding("fi_henkilotunnus", 0.95, m, "Finnish henkilötunnus")


_DE = re.compile(r"(?<![\w-])([1-9]\d) ?(\d{3}) ?(\d{3}) ?(\d{3})(?![\w-])")


def de_steuer_id_ok(digits: str) -> bool:
    if len(digits) != 11 or digits[0] == "0":
        return False
    first = digits[:10]
    counts = {d: first.count(d) for d in set(first)}
    repeated = [d for d, c in counts.items() if c > 1]
    if len(repeated) != 1 or counts[repeated[0]] not in (2, 3):
        return False
    if counts[repeated[0]] == 3 and repeated[0] * 3 in first:
        return False
    product = 10
    for ch in first:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = 11 - product
    return (0 if check == 10 else check) == int(digits[10])


def _de(text: str) -> Iterator[Finding]:
    for m in _DE.finditer(text):
        if de_steuer_id_ok("".join(m.groups())):
            yield _finding("de_steuer_id", 0.85, m, "German Steuer-ID (ISO 7064 valid)")


_FR = re.compile(
    r"(?<![\w-])([1-478]) ?(\d{2}) ?(\d{2}) ?(\d{2}|2[AB]) ?(\d{3}) ?(\d{3}) ?(\d{2})(?![\w-])"
)


def fr_nir_ok(sex: str, yy: str, mm: str, dept: str, commune: str, order: str, key: str) -> bool:
    month = int(mm)
    if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
        return False
    dept_number = {"2A": "19", "2B": "18"}.get(dept, dept)
    number = int(sex + yy + mm + dept_number + commune + order)
    return 97 - number % 97 == int(key)


def _fr(text: str) -> Iterator[Finding]:
    for m in _FR.finditer(text):
        if fr_nir_ok(*m.groups()):
            yield _finding("fr_nir", 0.95, m, "French NIR (key valid)")


_CZ = re.compile(r"(?<![\w-])(\d{2})(\d{2})(\d{2})(/?)(\d{4})(?![\w-])")


def rodne_cislo_ok(digits: str) -> bool:
    yy, mm, dd = int(digits[:2]), int(digits[2:4]), int(digits[4:6])
    month = mm - 70 if mm > 70 else mm - 50 if mm > 50 else mm - 20 if mm > 20 else mm
    year = 2000 + yy if yy < 54 else 1900 + yy
    if not _valid_date(year, month, dd):
        return False
    number = int(digits)
    return number % 11 == 0 or (int(digits[:9]) % 11 == 10 and digits[9] == "0")


def _cz(text: str) -> Iterator[Finding]:
    for m in _CZ.finditer(text):
        yy, mm, dd, sep, serial = m.groups()
        if rodne_cislo_ok(yy + mm + dd + serial):
            yield _finding("cz_sk_rodne_cislo", 0.9 if sep else 0.8, m, "Czech/Slovak rodné číslo")


DETECTORS: dict[str, Callable[[str], Iterator[Finding]]] = {
    "email": _emails,
    "iban": _ibans,
    "payment_card": _cards,
    "se_personnummer": _se,
    "no_fodselsnummer": _no,
    "dk_cpr": _dk,
    "fi_henkilotunnus": _fi,
    "de_steuer_id": _de,
    "fr_nir": _fr,
    "cz_sk_rodne_cislo": _cz,
    "phone": _phones,
}


LOCALE_KINDS: dict[str, str] = {
    "sv": "se_personnummer",
    "no": "no_fodselsnummer",
    "nb": "no_fodselsnummer",
    "nn": "no_fodselsnummer",
    "da": "dk_cpr",
    "fi": "fi_henkilotunnus",
    "de": "de_steuer_id",
    "fr": "fr_nir",
    "cs": "cz_sk_rodne_cislo",
    "sk": "cz_sk_rodne_cislo",
}


def _resolve_overlaps(findings: list[Finding], prefer: str | None = None) -> list[Finding]:
    """Keep the best of overlapping findings: highest score (the `prefer`red kind, from the
    locale, counts 0.1 higher: 070761-4285 is valid both in Sweden and Denmark), then the
    earlier kind in PII_KINDS."""
    rank = {kind: i for i, kind in enumerate(PII_KINDS)}

    def key(f: Finding) -> tuple[float, int, int]:
        return (-(f.score + (0.1 if f.kind == prefer else 0.0)), rank.get(f.kind, 99), f.start or 0)

    best = sorted(findings, key=key)
    kept: list[Finding] = []
    for f in best:
        assert f.start is not None and f.end is not None
        if all(
            f.end <= k.start or f.start >= k.end
            for k in kept
            if k.start is not None and k.end is not None
        ):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start or 0)


def find_pii(
    text: str, kinds: Collection[str] | None = None, *, locale: str | None = None
) -> list[Finding]:
    """Every PII finding in `text` (of `kinds`, default all), non-overlapping, in text order.
    `locale` ("sv", "da-DK", …) breaks ties between national id formats."""
    selected = PII_KINDS if kinds is None else [k for k in PII_KINDS if k in kinds]
    found = [f for kind in selected for f in DETECTORS[kind](text)]
    prefer = LOCALE_KINDS.get((locale or "").split("-")[0].split("_")[0].lower())
    return _resolve_overlaps(found, prefer)


class PiiDetector:
    """A guardrail detector for the given kinds (all by default)."""

    def __init__(self, kinds: Sequence[str] | None = None) -> None:
        unknown = sorted(set(kinds or ()) - set(PII_KINDS))
        if unknown:
            raise ValueError(f"unknown PII kind {unknown[0]!r} (known: {', '.join(PII_KINDS)})")
        self.kinds = tuple(kinds) if kinds else PII_KINDS

    def __call__(self, text: str, context: GuardrailContext) -> list[Finding]:
        return find_pii(text, self.kinds, locale=context.locale)


__all__ = [
    "IBAN_LENGTHS",
    "LOCALE_KINDS",
    "PII_KINDS",
    "PiiDetector",
    "de_steuer_id_ok",
    "find_pii",
    "fr_nir_ok",
    "iban_ok",
    "luhn_ok",
    "no_fodselsnummer_ok",
    "rodne_cislo_ok",
]
