"""The credential vault: per-tenant named secrets, AES-256-GCM encrypted at rest.

Envelope encryption: each tenant has a random 256-bit data key, stored only wrapped by the
`KeyProvider` (local master key or a KMS). Each secret version is encrypted under its tenant's
data key with associated data binding it to (tenant, name, version): a ciphertext copied to
another tenant, another name or another version row does not decrypt.

Versions: `put` never overwrites; it adds version n+1. `get` returns the newest live version, or
a given `version` — old versions stay readable so a run that resolved version 3 before a
rotation can finish with it. `delete` crypto-shreds (wipes ciphertext and nonce, keeps a
tombstone row for the audit trail) one version or all of them; a later `put` continues the
numbering.

Values leave the vault only inside `Secret.value` (a pydantic `SecretStr`: repr and str show
asterisks). If the vault is given a `SecretRedactor`, every value it hands out is registered
there, so logs, spans and events can be scrubbed of it.
"""

from __future__ import annotations

import builtins
import os
import re
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from keel.control.keys import DecryptionFailed, KeyProvider
from keel.control.ledger import AuditKind, Ledger, canonical_json
from keel.control.redactor import SecretRedactor
from keel.errors import InvalidInput, NotFound
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import VaultDataKey, VaultSecret
from keel.store.types import utcnow

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}")
_NONCE_BYTES = 12
MAX_SECRET_BYTES = 64 * 1024
_RETRIES = 5


@dataclass(frozen=True)
class Secret:
    """A secret value as handed to a tool. `value` never shows itself in repr/str/logs."""

    tenant_id: str
    name: str
    version: int
    value: SecretStr
    created_at: datetime
    created_by: str

    def reveal(self) -> str:
        """The plaintext: call only at the point of injection into the outgoing request."""
        return self.value.get_secret_value()


@dataclass(frozen=True)
class SecretInfo:
    """Metadata of one named secret; never the value."""

    name: str
    latest_version: int
    live_versions: tuple[int, ...]
    created_at: datetime
    created_by: str


def _secret_aad(tenant_id: str, name: str, version: int) -> bytes:
    return canonical_json(["keel.vault.secret.v1", tenant_id, name, version]).encode()


def _data_key_aad(tenant_id: str, version: int) -> bytes:
    return canonical_json(["keel.vault.data-key.v1", tenant_id, version]).encode()


def _check_ids(tenant_id: str, name: str | None = None) -> None:
    if not tenant_id or len(tenant_id) > 64:
        raise InvalidInput("tenant must be 1-64 characters", field="tenant_id")
    if name is not None and not _NAME.fullmatch(name):
        raise InvalidInput(
            "secret name must start with a letter or digit and use only letters, digits, "
            "'_', '.', '-', '/' (at most 200 characters)",
            field="name",
        )


class Vault:
    """Store, version, read and delete tenant secrets. One instance per process is enough."""

    def __init__(
        self,
        db: Database,
        key_provider: KeyProvider,
        *,
        ledger: Ledger | None = None,
        redactor: SecretRedactor | None = None,
        audit_reads: bool = False,
    ) -> None:
        self.db = db
        self.keys = key_provider
        self.ledger = ledger
        self.redactor = redactor
        self.audit_reads = audit_reads

    # --- data keys ----------------------------------------------------------------------

    def _data_key(
        self, s: Session, tenant_id: str, version: int | None = None
    ) -> tuple[int, bytes]:
        """The tenant's data key (the newest, or a given version), created on first use."""
        if version is None:
            version = s.scalar(
                select(func.max(VaultDataKey.version)).where(VaultDataKey.tenant_id == tenant_id)
            )
            if version is None:
                self._create_data_key(s, tenant_id, 1)
                version = 1
        row = s.scalars(
            select(VaultDataKey).where(
                VaultDataKey.tenant_id == tenant_id, VaultDataKey.version == version
            )
        ).one_or_none()
        if row is None:
            raise DecryptionFailed(f"data key v{version} of tenant {tenant_id!r} is missing")
        return version, self.keys.unwrap(row.wrapped_key, context=_data_key_aad(tenant_id, version))

    def _create_data_key(self, s: Session, tenant_id: str, version: int) -> None:
        values = {
            "tenant_id": tenant_id,
            "version": version,
            "wrapped_key": self.keys.wrap(
                AESGCM.generate_key(bit_length=256), context=_data_key_aad(tenant_id, version)
            ),
            "provider": self.keys.name,
            "master_key_id": self.keys.key_id,
            "created_at": utcnow(),
        }
        insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
        s.execute(insert(VaultDataKey).values(**values).on_conflict_do_nothing())

    # --- secrets ------------------------------------------------------------------------

    def put(self, tenant_id: str, name: str, value: str | SecretStr, *, actor: str) -> int:
        """Store a new version of `name` and return its number (1 for a new name)."""
        _check_ids(tenant_id, name)
        plaintext = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not plaintext:
            raise InvalidInput("secret value is empty", field="value")
        if len(plaintext.encode()) > MAX_SECRET_BYTES:
            raise InvalidInput(f"secret value exceeds {MAX_SECRET_BYTES} bytes", field="value")
        if not actor:
            raise InvalidInput("actor is required", field="actor")
        for attempt in range(_RETRIES):
            try:
                with self.db.transaction() as s:
                    return self._put(s, tenant_id, name, plaintext, actor)
            except IntegrityError:
                # A concurrent put took the same version number: take the next one.
                if attempt == _RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    def _put(self, s: Session, tenant_id: str, name: str, plaintext: str, actor: str) -> int:
        key_version, key = self._data_key(s, tenant_id)
        newest = s.scalar(
            select(func.max(VaultSecret.version)).where(
                VaultSecret.tenant_id == tenant_id, VaultSecret.name == name
            )
        )
        version = (newest or 0) + 1
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(
            nonce, plaintext.encode(), _secret_aad(tenant_id, name, version)
        )
        s.add(
            VaultSecret(
                id=new_id("sec"),
                tenant_id=tenant_id,
                name=name,
                version=version,
                data_key_version=key_version,
                ciphertext=ciphertext,
                nonce=nonce,
                created_by=actor,
            )
        )
        s.flush()
        if self.ledger is not None:
            self.ledger.append(
                actor=actor,
                kind=AuditKind.CREDENTIAL,
                subject=f"secret:{name}",
                data={"action": "put", "version": version},
                tenant_id=tenant_id,
                session=s,
            )
        return version

    def get(
        self, tenant_id: str, name: str, *, version: int | None = None, actor: str = ""
    ) -> Secret:
        """The newest live version (or `version`). NotFound if absent, deleted or another
        tenant's; DecryptionFailed if the stored bytes do not authenticate."""
        _check_ids(tenant_id, name)
        with self.db.transaction() as s:
            q = select(VaultSecret).where(
                VaultSecret.tenant_id == tenant_id,
                VaultSecret.name == name,
                VaultSecret.deleted_at.is_(None),
            )
            if version is not None:
                q = q.where(VaultSecret.version == version)
            row = s.scalars(q.order_by(VaultSecret.version.desc()).limit(1)).one_or_none()
            ident = name if version is None else f"{name}@{version}"
            if row is None or row.ciphertext is None or row.nonce is None:
                raise NotFound("secret", ident)
            _, key = self._data_key(s, tenant_id, row.data_key_version)
            try:
                plaintext = (
                    AESGCM(key)
                    .decrypt(row.nonce, row.ciphertext, _secret_aad(tenant_id, name, row.version))
                    .decode()
                )
            except InvalidTag as exc:
                raise DecryptionFailed(
                    f"secret {ident!r} of tenant {tenant_id!r} does not authenticate"
                ) from exc
            if self.ledger is not None and self.audit_reads:
                self.ledger.append(
                    actor=actor or "vault",
                    kind=AuditKind.CREDENTIAL,
                    subject=f"secret:{name}",
                    data={"action": "get", "version": row.version},
                    tenant_id=tenant_id,
                    session=s,
                )
            secret = Secret(
                tenant_id=tenant_id,
                name=name,
                version=row.version,
                value=SecretStr(plaintext),
                created_at=row.created_at,
                created_by=row.created_by,
            )
        if self.redactor is not None:
            self.redactor.add(secret.value)
        return secret

    def list(self, tenant_id: str) -> list[SecretInfo]:
        """Names with live versions, sorted; metadata only."""
        _check_ids(tenant_id)
        with self.db.transaction() as s:
            rows = s.scalars(
                select(VaultSecret)
                .where(VaultSecret.tenant_id == tenant_id, VaultSecret.deleted_at.is_(None))
                .order_by(VaultSecret.name, VaultSecret.version)
            ).all()
        by_name: dict[str, list[VaultSecret]] = {}
        for row in rows:
            by_name.setdefault(row.name, []).append(row)
        return [
            SecretInfo(
                name=name,
                latest_version=versions[-1].version,
                live_versions=tuple(v.version for v in versions),
                created_at=versions[-1].created_at,
                created_by=versions[-1].created_by,
            )
            for name, versions in by_name.items()
        ]

    def delete(
        self, tenant_id: str, name: str, *, actor: str, version: int | None = None
    ) -> builtins.list[int]:
        """Crypto-shred all live versions (or one); returns the versions deleted.

        NotFound when nothing live matches.
        """
        _check_ids(tenant_id, name)
        if not actor:
            raise InvalidInput("actor is required", field="actor")
        with self.db.transaction() as s:
            q = select(VaultSecret).where(
                VaultSecret.tenant_id == tenant_id,
                VaultSecret.name == name,
                VaultSecret.deleted_at.is_(None),
            )
            if version is not None:
                q = q.where(VaultSecret.version == version)
            rows = s.scalars(q.order_by(VaultSecret.version)).all()
            if not rows:
                raise NotFound("secret", name if version is None else f"{name}@{version}")
            now = utcnow()
            for row in rows:
                row.ciphertext = None
                row.nonce = None
                row.deleted_at = now
                row.deleted_by = actor
            s.flush()
            deleted = [row.version for row in rows]
            if self.ledger is not None:
                self.ledger.append(
                    actor=actor,
                    kind=AuditKind.CREDENTIAL,
                    subject=f"secret:{name}",
                    data={"action": "delete", "versions": deleted},
                    tenant_id=tenant_id,
                    session=s,
                )
            return deleted


__all__ = ["MAX_SECRET_BYTES", "Secret", "SecretInfo", "Vault"]
