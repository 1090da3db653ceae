"""The prompt registry: immutable versions (template + metadata) and movable aliases.

Versions are numbered per prompt from 1 and deduplicated by content hash, so pushing the
same template twice returns the existing version. Every alias move is kept in history.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from keel.errors import NotFound
from keel.store.database import Database
from keel.store.tables import Prompt, PromptAlias, PromptAliasEvent, PromptVersion
from keel.store.types import utcnow


@dataclass(frozen=True)
class ResolvedPrompt:
    name: str
    version: int
    template: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasMove:
    prompt_name: str
    alias: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    at: datetime


def content_hash(template: str, meta: dict[str, Any]) -> str:
    canonical = json.dumps({"template": template, "meta": meta}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


class PromptRegistry:
    def __init__(self, db: Database) -> None:
        self.db = db

    def push(
        self,
        name: str,
        template: str,
        meta: dict[str, Any] | None = None,
        *,
        created_by: str = "",
        description: str = "",
    ) -> int:
        """Store a version (or find the identical one) and return its number."""
        meta = meta or {}
        digest = content_hash(template, meta)
        with self.db.transaction() as s:
            if s.get(Prompt, name) is None:
                s.add(Prompt(name=name, description=description))
                s.flush()
            existing = s.scalars(
                select(PromptVersion).where(
                    PromptVersion.prompt_name == name, PromptVersion.content_hash == digest
                )
            ).first()
            if existing is not None:
                return existing.version
            newest = s.scalar(
                select(func.max(PromptVersion.version)).where(PromptVersion.prompt_name == name)
            )
            version = (newest or 0) + 1
            s.add(
                PromptVersion(
                    prompt_name=name,
                    version=version,
                    template=template,
                    meta=meta,
                    content_hash=digest,
                    created_by=created_by,
                )
            )
            return version

    def get(self, name: str, version: int) -> ResolvedPrompt:
        with self.db.transaction() as s:
            return self._get(s, name, version)

    def _get(self, s: Session, name: str, version: int) -> ResolvedPrompt:
        row = s.scalars(
            select(PromptVersion).where(
                PromptVersion.prompt_name == name, PromptVersion.version == version
            )
        ).first()
        if row is None:
            raise NotFound("prompt version", f"{name}@{version}")
        return ResolvedPrompt(name, row.version, row.template, dict(row.meta))

    def versions(self, name: str) -> list[ResolvedPrompt]:
        with self.db.transaction() as s:
            rows = s.scalars(
                select(PromptVersion)
                .where(PromptVersion.prompt_name == name)
                .order_by(PromptVersion.version)
            )
            return [ResolvedPrompt(name, r.version, r.template, dict(r.meta)) for r in rows]

    def names(self) -> list[str]:
        with self.db.transaction() as s:
            return list(s.scalars(select(Prompt.name).order_by(Prompt.name)))

    def aliases(self, name: str) -> dict[str, int]:
        with self.db.transaction() as s:
            rows = s.scalars(select(PromptAlias).where(PromptAlias.prompt_name == name))
            return {r.alias: r.version for r in rows}

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str = "",
        reason: str = "",
        session: Session | None = None,
    ) -> int | None:
        """Point ALIAS at VERSION, recording the move in the alias history; returns the
        history row's id (None when the alias already pointed there). With SESSION the move
        commits or rolls back with the caller's other writes."""
        if session is not None:
            return self._set_alias(session, name, alias, version, actor, reason)
        with self.db.transaction() as s:
            return self._set_alias(s, name, alias, version, actor, reason)

    def _set_alias(
        self, s: Session, name: str, alias: str, version: int, actor: str, reason: str
    ) -> int | None:
        self._get(s, name, version)
        row = s.get(PromptAlias, (name, alias))
        previous = row.version if row is not None else None
        if previous == version:
            return None
        if row is None:
            s.add(PromptAlias(prompt_name=name, alias=alias, version=version))
        else:
            row.version = version
            row.updated_at = utcnow()
        event = PromptAliasEvent(
            prompt_name=name,
            alias=alias,
            from_version=previous,
            to_version=version,
            actor=actor,
            reason=reason,
        )
        s.add(event)
        s.flush()
        return event.id

    def resolve(self, name: str, alias_or_version: str) -> ResolvedPrompt:
        """Resolve `production`, `staging`, … or a plain version number like `3`."""
        with self.db.transaction() as s:
            if alias_or_version.isdigit():
                return self._get(s, name, int(alias_or_version))
            row = s.get(PromptAlias, (name, alias_or_version))
            if row is None:
                raise NotFound("prompt alias", f"{name}@{alias_or_version}")
            return self._get(s, name, row.version)

    def history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        with self.db.transaction() as s:
            q = select(PromptAliasEvent).where(PromptAliasEvent.prompt_name == name)
            if alias is not None:
                q = q.where(PromptAliasEvent.alias == alias)
            rows = s.scalars(q.order_by(PromptAliasEvent.id))
            return [
                AliasMove(
                    r.prompt_name,
                    r.alias,
                    r.from_version,
                    r.to_version,
                    r.actor,
                    r.reason,
                    r.created_at,
                )
                for r in rows
            ]
