"""API keys: shown once, stored as sha256, per tenant, with scopes, revocable.

A secret is `keel_sk_` plus 32 random bytes (url-safe base64), so a sha256 lookup is as
strong as a slow hash would be and costs one index probe per request. Every change goes
through the optional `on_change` hook (`KeyChange`): that is where auditing plugs in.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from keel.errors import InvalidInput, NotFound, Unauthorized
from keel.identity.principal import Principal
from keel.identity.scopes import validate_scopes
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import ApiKey, Tenant
from keel.store.types import utcnow

KEY_PREFIX = "keel_sk_"
DEFAULT_SCOPES: tuple[str, ...] = ("*",)
LAST_USED_RESOLUTION = timedelta(seconds=60)
"""`last_used_at` is written at most this often per key, so auth stays a read."""


@dataclass(frozen=True)
class CreatedKey:
    id: str
    tenant_id: str
    user_id: str
    scopes: tuple[str, ...]
    secret: str  # shown once; never stored


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never the secret, only its first characters."""

    id: str
    tenant_id: str
    user_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class KeyChange:
    """One change to the key set, handed to an `on_change` hook (audit, metrics)."""

    action: Literal["created", "revoked"]
    key: KeyInfo


KeyChangeHook = Callable[[KeyChange], None]


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(key: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=key.id,
        tenant_id=key.tenant_id,
        user_id=key.user_id,
        name=key.name,
        prefix=key.prefix,
        scopes=tuple(key.scopes),
        created_at=key.created_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
    )


def ensure_tenant(db: Database, tenant_id: str, name: str | None = None) -> None:
    """Create the tenant row if absent; safe when two callers race to create it."""
    try:
        with db.transaction() as s:
            if s.get(Tenant, tenant_id) is None:
                s.add(Tenant(id=tenant_id, name=name or tenant_id))
    except IntegrityError:
        with db.transaction() as s:
            if s.get(Tenant, tenant_id) is None:
                raise


def create_key(
    db: Database,
    tenant_id: str,
    user_id: str = "admin",
    scopes: tuple[str, ...] = DEFAULT_SCOPES,
    name: str = "",
    *,
    on_change: KeyChangeHook | None = None,
) -> CreatedKey:
    """A new key for `user_id` in `tenant_id` (created if absent). The secret is returned once."""
    if not tenant_id or len(tenant_id) > 64:
        raise InvalidInput("tenant id must be 1-64 characters", field="tenant")
    if not user_id or len(user_id) > 200:
        raise InvalidInput("user id must be 1-200 characters", field="user")
    validate_scopes(scopes)
    ensure_tenant(db, tenant_id)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = new_id("key")
    with db.transaction() as s:
        row = ApiKey(
            id=key_id,
            tenant_id=tenant_id,
            user_id=user_id,
            name=name,
            prefix=secret[: len(KEY_PREFIX) + 6],
            secret_hash=hash_secret(secret),
            scopes=list(scopes),
            created_at=utcnow(),
        )
        s.add(row)
    if on_change is not None:
        on_change(KeyChange("created", _info(row)))
    return CreatedKey(key_id, tenant_id, user_id, scopes, secret)


def authenticate(db: Database, secret: str) -> Principal:
    """The principal behind an API key secret; Unauthorized if unknown or revoked."""
    if not secret.startswith(KEY_PREFIX):
        raise Unauthorized("invalid or revoked API key")
    with db.transaction() as s:
        key = s.scalars(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret))).first()
        if key is None or key.revoked_at is not None:
            raise Unauthorized("invalid or revoked API key")
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now
        return Principal(tenant_id=key.tenant_id, user_id=key.user_id, scopes=tuple(key.scopes))


def list_keys(db: Database, tenant_id: str | None = None) -> list[KeyInfo]:
    """Keys oldest first, optionally of one tenant; revoked keys included (marked)."""
    with db.transaction() as s:
        q = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if tenant_id is not None:
            q = q.where(ApiKey.tenant_id == tenant_id)
        return [_info(k) for k in s.scalars(q)]


def revoke_key(
    db: Database,
    key_id: str,
    *,
    tenant_id: str | None = None,
    on_change: KeyChangeHook | None = None,
) -> KeyInfo:
    """Revoke a key (idempotent). With `tenant_id`, a key of another tenant is NotFound."""
    with db.transaction() as s:
        key = s.get(ApiKey, key_id)
        if key is None or (tenant_id is not None and key.tenant_id != tenant_id):
            raise NotFound("api key", key_id)
        already = key.revoked_at is not None
        key.revoked_at = key.revoked_at or utcnow()
        info = _info(key)
    if on_change is not None and not already:
        on_change(KeyChange("revoked", info))
    return info
