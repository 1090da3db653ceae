"""The audit ledger: append-only and hash-chained, one chain per tenant plus one global chain.

Every entry stores `hash = sha256(prev_hash + canonical JSON of its own fields)`, so editing,
deleting, reordering or cutting off entries is detected by `Ledger.verify()`.

Why one chain per tenant (and a global chain, key "", for entries with no tenant):
- appends of different tenants never wait on each other (one head row per chain is the only
  serialisation point), so a busy tenant cannot slow another tenant's tool calls;
- one tenant's chain can be exported and verified on its own without revealing anything about
  other tenants (not even how many entries they have);
- a tenant's chain can be archived or erased whole without breaking any other chain.

Serialisation: each append first upserts the chain's head row (`INSERT … ON CONFLICT DO
NOTHING`) and then reads it `FOR UPDATE`, all in the caller's transaction. On PostgreSQL the row
lock orders concurrent appenders; on SQLite the first statement being a write takes the
database write lock before the head is read. A unique `(chain, seq)` constraint is the last line
of defence: a racing append fails rather than forking the chain.

A hash chain detects tampering by anyone who cannot rewrite the whole chain and its head; to
defend against a database administrator, publish the head hashes (`keel audit verify` prints
them) somewhere they cannot edit.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from keel.errors import InvalidInput
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import AuditEntry, AuditHead
from keel.store.types import utcnow

GENESIS_HASH = "0" * 64
GLOBAL_CHAIN = ""
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


class AuditKind(StrEnum):
    """The kinds Keel itself writes; any lowercase `word` or `word.word` is accepted too."""

    TOOL_DECISION = "tool_decision"
    APPROVAL = "approval"
    PROMPT_PROMOTION = "prompt_promotion"
    API_KEY = "api_key"
    POLICY = "policy"
    CREDENTIAL = "credential"
    GUARDRAIL = "guardrail"
    GOVERNED_SQL = "governed_sql"


class Problem(StrEnum):
    """Why `verify()` rejected an entry."""

    EDITED = "edited"  # the entry's own fields no longer match its hash
    DELETED = "deleted"  # a gap in the sequence
    REORDERED = "reordered"  # the entry's hash is valid for a different position
    BROKEN_LINK = "broken_link"  # prev_hash is not the previous entry's hash
    TRUNCATED = "truncated"  # the head names entries that are gone
    HEAD_MISMATCH = "head_mismatch"  # the head disagrees with the last entry
    HEAD_MISSING = "head_missing"  # entries exist but the chain has no head


@dataclass(frozen=True)
class LedgerEntry:
    """One verified-shape entry as read back from the ledger."""

    id: str
    seq: int
    tenant_id: str | None
    actor: str
    kind: str
    subject: str
    data: dict[str, Any]
    created_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class BadEntry:
    """The first entry that failed verification, and why."""

    tenant_id: str | None
    seq: int
    entry_id: str | None
    problem: Problem
    reason: str

    def __str__(self) -> str:
        chain = self.tenant_id if self.tenant_id is not None else "(global)"
        return f"chain {chain} entry #{self.seq}: {self.problem.value}: {self.reason}"


@dataclass(frozen=True)
class VerifyReport:
    """`ok` with the number of entries checked, or the first bad entry.

    `heads` maps each verified chain (tenant id, "" for global) to its head hash: publish these
    somewhere the database administrator cannot edit to make rewriting history detectable.
    """

    ok: bool
    count: int
    heads: dict[str, str]
    first_bad: BadEntry | None = None


def canonical_json(value: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def format_timestamp(value: datetime) -> str:
    """Fixed-width UTC timestamp with microseconds, as both databases round-trip it."""
    if value.tzinfo is None:
        raise ValueError("naive datetime in the audit ledger")
    return value.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def entry_hash(
    *,
    prev_hash: str,
    entry_id: str,
    seq: int,
    tenant_id: str | None,
    actor: str,
    kind: str,
    subject: str,
    data_json: str,
    created_at: datetime,
) -> str:
    """sha256 over the previous hash and the canonical JSON of the entry's own fields.

    `data_json` is the stored canonical text and is hashed as a string, so no JSON round trip
    through either database can change what is verified.
    """
    fields = {
        "actor": actor,
        "created_at": format_timestamp(created_at),
        "data": data_json,
        "id": entry_id,
        "kind": kind,
        "seq": seq,
        "subject": subject,
        "tenant_id": tenant_id,
    }
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def _row_hash(row: AuditEntry, *, seq: int | None = None) -> str:
    return entry_hash(
        prev_hash=row.prev_hash,
        entry_id=row.id,
        seq=row.seq if seq is None else seq,
        tenant_id=row.tenant_id,
        actor=row.actor,
        kind=row.kind,
        subject=row.subject,
        data_json=row.data,
        created_at=row.created_at,
    )


def _check_json(value: Any, path: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{path} is not a finite number", field=path)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{path} has a non-string key {key!r}", field=path)
            _check_json(item, f"{path}.{key}")
        return
    raise InvalidInput(f"{path} holds a {type(value).__name__}, not JSON", field=path)


def _to_entry(row: AuditEntry) -> LedgerEntry:
    return LedgerEntry(
        id=row.id,
        seq=row.seq,
        tenant_id=row.tenant_id,
        actor=row.actor,
        kind=row.kind,
        subject=row.subject,
        data=json.loads(row.data),
        created_at=row.created_at,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


class Ledger:
    """Append and verify audit entries. Safe to share; every call opens its own transaction
    unless it is given the caller's `session` (then the entry commits or rolls back with the
    caller's own writes)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def append(
        self,
        *,
        actor: str,
        kind: str,
        subject: str = "",
        data: Mapping[str, Any] | None = None,
        tenant_id: str | None = None,
        session: Session | None = None,
    ) -> LedgerEntry:
        """Append one entry to the tenant's chain (the global chain when `tenant_id` is None)."""
        if not actor:
            raise InvalidInput("actor is required", field="actor")
        if not _KIND.fullmatch(kind):
            raise InvalidInput(f"invalid audit kind {kind!r}", field="kind")
        if tenant_id == GLOBAL_CHAIN:
            raise InvalidInput("tenant_id must be a tenant id or None", field="tenant_id")
        payload = dict(data or {})
        _check_json(payload, "data")
        if session is not None:
            return self._append(session, actor, kind, subject, payload, tenant_id)
        with self.db.transaction() as s:
            return self._append(s, actor, kind, subject, payload, tenant_id)

    def _lock_head(self, s: Session, chain: str) -> tuple[int, str]:
        # Write first: on SQLite the first write takes the database's write lock (FOR UPDATE
        # means nothing there), so the head read below cannot race another appender.
        values = {"chain": chain, "seq": 0, "hash": GENESIS_HASH, "updated_at": utcnow()}
        dialect = s.get_bind().dialect.name
        if dialect == "postgresql":
            s.execute(pg_insert(AuditHead).values(**values).on_conflict_do_nothing())
        else:
            s.execute(sqlite_insert(AuditHead).values(**values).on_conflict_do_nothing())
        head = s.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.chain == chain).with_for_update()
        ).one()
        return int(head.seq), str(head.hash)

    def _append(
        self,
        s: Session,
        actor: str,
        kind: str,
        subject: str,
        data: dict[str, Any],
        tenant_id: str | None,
    ) -> LedgerEntry:
        chain = tenant_id if tenant_id is not None else GLOBAL_CHAIN
        head_seq, head_hash = self._lock_head(s, chain)
        seq = head_seq + 1
        entry_id = new_id("aud")
        data_json = canonical_json(data)
        created_at = utcnow()
        digest = entry_hash(
            prev_hash=head_hash,
            entry_id=entry_id,
            seq=seq,
            tenant_id=tenant_id,
            actor=actor,
            kind=kind,
            subject=subject,
            data_json=data_json,
            created_at=created_at,
        )
        row = {
            "id": entry_id,
            "chain": chain,
            "seq": seq,
            "tenant_id": tenant_id,
            "actor": actor,
            "kind": kind,
            "subject": subject,
            "data": data_json,
            "created_at": created_at,
            "prev_hash": head_hash,
            "hash": digest,
        }
        # Core statements, not the unit of work: an append is on the path of every tool call
        s.execute(insert(AuditEntry), [row])
        s.execute(
            update(AuditHead)
            .where(AuditHead.chain == chain)
            .values(seq=seq, hash=digest, updated_at=created_at)
        )
        return _to_entry(AuditEntry(**row))

    def entries(
        self,
        *,
        tenant_id: str | None = None,
        kind: str | None = None,
        limit: int = 50,
        global_only: bool = False,
    ) -> list[LedgerEntry]:
        """Newest first. `tenant_id` filters to one tenant; `global_only` to entries with none."""
        if limit < 1:
            raise InvalidInput("limit must be at least 1", field="limit")
        q = select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.seq.desc())
        if global_only:
            q = q.where(AuditEntry.tenant_id.is_(None))
        elif tenant_id is not None:
            q = q.where(AuditEntry.tenant_id == tenant_id)
        if kind is not None:
            q = q.where(AuditEntry.kind == kind)
        with self.db.transaction() as s:
            return [_to_entry(r) for r in s.scalars(q.limit(limit))]

    def head(self, tenant_id: str | None = None) -> tuple[int, str]:
        """(seq, hash) of a chain's newest entry; (0, GENESIS_HASH) for an empty chain."""
        chain = tenant_id if tenant_id is not None else GLOBAL_CHAIN
        with self.db.transaction() as s:
            row = s.get(AuditHead, chain)
            return (0, GENESIS_HASH) if row is None else (row.seq, row.hash)

    def verify(self, chain: str | None = None) -> VerifyReport:
        """Check every chain (or one: a tenant id, or "" for the global chain).

        Returns the first bad entry in chain order ("" first, then tenant ids sorted) and stops
        there; a clean ledger returns ok with the number of entries checked.
        """
        with self.db.transaction() as s:
            chains = sorted(
                set(s.scalars(select(AuditHead.chain)))
                | set(s.scalars(select(AuditEntry.chain).distinct()))
            )
            if chain is not None:
                chains = [c for c in chains if c == chain]
            total = 0
            heads: dict[str, str] = {}
            for c in chains:
                count, head_hash, bad = self._verify_chain(s, c)
                total += count
                if bad is not None:
                    return VerifyReport(ok=False, count=total, heads=heads, first_bad=bad)
                heads[c] = head_hash
            return VerifyReport(ok=True, count=total, heads=heads)

    def _rows(self, s: Session, chain: str) -> Iterator[AuditEntry]:
        q = select(AuditEntry).where(AuditEntry.chain == chain).order_by(AuditEntry.seq)
        yield from s.scalars(q.execution_options(yield_per=1000))

    def _original_seq(self, s: Session, row: AuditEntry) -> int | None:
        """The position whose hash this entry's stored hash matches, if any (a moved entry)."""
        top = s.scalar(select(func.max(AuditEntry.seq)).where(AuditEntry.chain == row.chain))
        for candidate in range(1, int(top or 0) + 2):
            if candidate != row.seq and _row_hash(row, seq=candidate) == row.hash:
                return candidate
        return None

    def _verify_chain(self, s: Session, chain: str) -> tuple[int, str, BadEntry | None]:
        tenant = chain if chain != GLOBAL_CHAIN else None
        expected, prev, count = 1, GENESIS_HASH, 0

        def bad(seq: int, entry_id: str | None, problem: Problem, reason: str) -> BadEntry:
            return BadEntry(tenant, seq, entry_id, problem, reason)

        for row in self._rows(s, chain):
            if (row.tenant_id if row.tenant_id is not None else GLOBAL_CHAIN) != chain:
                return count, prev, bad(row.seq, row.id, Problem.EDITED, "tenant changed")
            if row.seq > expected:
                missing = (
                    f"#{expected}" if row.seq == expected + 1 else f"#{expected}..#{row.seq - 1}"
                )
                return count, prev, bad(expected, None, Problem.DELETED, f"entry {missing} missing")
            if _row_hash(row) != row.hash:
                original = self._original_seq(s, row)
                if original is not None:
                    reason = f"entry {row.id} was written as #{original}, now stored as #{row.seq}"
                    return count, prev, bad(row.seq, row.id, Problem.REORDERED, reason)
                reason = "stored fields do not match the entry's hash"
                return count, prev, bad(row.seq, row.id, Problem.EDITED, reason)
            if row.prev_hash != prev:
                reason = f"prev_hash does not match entry #{row.seq - 1}'s hash"
                return count, prev, bad(row.seq, row.id, Problem.BROKEN_LINK, reason)
            prev, expected, count = row.hash, row.seq + 1, count + 1

        head = s.get(AuditHead, chain)
        last = expected - 1
        if head is None:
            if last:
                return count, prev, bad(last, None, Problem.HEAD_MISSING, "chain has no head row")
            return count, prev, None
        if head.seq > last:
            missing = f"#{last + 1}" if head.seq == last + 1 else f"#{last + 1}..#{head.seq}"
            reason = f"head says #{head.seq}, last entry is #{last}: {missing} missing"
            return count, prev, bad(last + 1, None, Problem.TRUNCATED, reason)
        if head.seq != last or head.hash != prev:
            reason = f"head (#{head.seq}) does not match the last entry (#{last})"
            return count, prev, bad(last, None, Problem.HEAD_MISMATCH, reason)
        return count, prev, None


__all__ = [
    "GENESIS_HASH",
    "AuditKind",
    "BadEntry",
    "Ledger",
    "LedgerEntry",
    "Problem",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
]
