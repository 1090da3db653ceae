"""API keys: shown once, stored as sha256, per tenant, with scopes, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from keel.errors import NotFound, Unauthorized
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import ApiKey, Tenant
from keel.store.types import utcnow

KEY_PREFIX = "keel_sk_"
DEFAULT_SCOPES: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class CreatedKey:
    id: str
    tenant_id: str
    user_id: str
    scopes: tuple[str, ...]
    secret: str  # shown once; never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ensure_tenant(db: Database, tenant_id: str, name: str | None = None) -> None:
    with db.transaction() as s:
        if s.get(Tenant, tenant_id) is None:
            s.add(Tenant(id=tenant_id, name=name or tenant_id))


def create_key(
    db: Database,
    tenant_id: str,
    user_id: str = "admin",
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    name: str = "",
) -> CreatedKey:
    ensure_tenant(db, tenant_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = new_id("key")
    with db.transaction() as s:
        s.add(
            ApiKey(
                id=key_id,
                tenant_id=tenant_id,
                user_id=user_id,
                name=name,
                prefix=secret[: len(KEY_PREFIX) + 6],
                secret_hash=hash_secret(secret),
                scopes=list(scopes),
            )
        )
    return CreatedKey(key_id, tenant_id, user_id, scopes, secret)


def authenticate(db: Database, secret: str) -> Principal:
    """The principal behind an API key secret; Unauthorized if unknown or revoked."""
    with db.transaction() as s:
        key = s.scalars(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret))).first()
        if key is None or key.revoked_at is not None:
            raise Unauthorized("invalid or revoked API key")
        return Principal(tenant_id=key.tenant_id, user_id=key.user_id, scopes=tuple(key.scopes))


def list_keys(db: Database, tenant_id: str | None = None) -> list[ApiKey]:
    with db.transaction() as s:
        q = select(ApiKey).order_by(ApiKey.created_at)
        if tenant_id is not None:
            q = q.where(ApiKey.tenant_id == tenant_id)
        return list(s.scalars(q))


def revoke_key(db: Database, key_id: str) -> None:
    with db.transaction() as s:
        key = s.get(ApiKey, key_id)
        if key is None:
            raise NotFound("api key", key_id)
        key.revoked_at = key.revoked_at or utcnow()
