"""Test-only side effects the fabric tests observe: an effects table keyed by idempotency key
(an external system that deduplicates), attempt counters, and switches the tests flip.
Everything lives in `<data_dir>/probe.db`, so it works across processes (crash harness)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, run_id TEXT, payload TEXT, at REAL);
CREATE TABLE IF NOT EXISTS attempts (name TEXT, key TEXT, at REAL);
CREATE TABLE IF NOT EXISTS switches (name TEXT PRIMARY KEY, value TEXT);
"""


def connect(data_dir: Path) -> sqlite3.Connection:
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data_dir / "probe.db", timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA)
    return conn


def attempt(data_dir: Path, name: str, key: str) -> int:
    conn = connect(data_dir)
    try:
        conn.execute("INSERT INTO attempts VALUES (?, ?, ?)", (name, key, time.time()))
        return int(
            conn.execute(
                "SELECT count(*) FROM attempts WHERE name = ? AND key = ?", (name, key)
            ).fetchone()[0]
        )
    finally:
        conn.close()


def effect(data_dir: Path, key: str, run_id: str, payload: str) -> bool:
    """Apply the effect once per key (True when this call applied it)."""
    conn = connect(data_dir)
    try:
        cur = conn.execute(
            "INSERT OR IGNORE INTO effects VALUES (?, ?, ?, ?)", (key, run_id, payload, time.time())
        )
        return cur.rowcount == 1
    finally:
        conn.close()


def switch(data_dir: Path, name: str) -> str | None:
    conn = connect(data_dir)
    try:
        row = conn.execute("SELECT value FROM switches WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def set_switch(data_dir: Path, name: str, value: str | None) -> None:
    conn = connect(data_dir)
    try:
        if value is None:
            conn.execute("DELETE FROM switches WHERE name = ?", (name,))
        else:
            conn.execute("INSERT OR REPLACE INTO switches VALUES (?, ?)", (name, value))
    finally:
        conn.close()


def rows(data_dir: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    conn = connect(data_dir)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()
