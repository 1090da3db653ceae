"""Key providers: what wraps the vault's per-tenant data keys.

`KeyProvider` is the pluggable point (a KMS or HSM implements `wrap`/`unwrap`); the
`LocalKeyProvider` wraps with AES-256-GCM under a 32-byte master key from settings. In
development with no `KEEL_MASTER_KEY`, `local_key_provider()` generates one into
`<home>/master.key` (mode 0600) and logs that it did; production refuses to start without one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keel.errors import InvalidInput, KeelError
from keel.settings import Settings

logger = logging.getLogger(__name__)

_NONCE_BYTES = 12
MASTER_KEY_FILE = "master.key"


class DecryptionFailed(KeelError):
    """Ciphertext or wrapped key does not authenticate: wrong key, wrong binding, or tampering."""

    code = "decryption_failed"


@runtime_checkable
class KeyProvider(Protocol):
    """Wraps and unwraps data keys. `context` is authenticated (bound) but not encrypted:
    unwrapping with a different context must fail."""

    @property
    def name(self) -> str:
        """Provider kind stored next to each wrapped key (e.g. "local", "aws-kms")."""
        ...

    @property
    def key_id(self) -> str:
        """Which master key wrapped a data key (stored, so rotation can find old keys)."""
        ...

    def wrap(self, key: bytes, *, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes: ...


class LocalKeyProvider:
    """AES-256-GCM key wrapping under a local 32-byte master key (`nonce || ciphertext+tag`)."""

    name = "local"

    def __init__(self, master_key: bytes, *, generated_at: Path | None = None) -> None:
        if len(master_key) != 32:
            raise InvalidInput("the master key must be 32 bytes", field="master_key")
        self._aead = AESGCM(master_key)
        self._key_id = hashlib.sha256(b"keel.master-key-id\x00" + master_key).hexdigest()[:16]
        self.generated_at = generated_at

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, key: bytes, *, context: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, context)

    def unwrap(self, wrapped: bytes, *, context: bytes) -> bytes:
        nonce, body = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, context)
        except InvalidTag as exc:
            raise DecryptionFailed(
                "data key does not unwrap: wrong master key or tampered key"
            ) from exc

    def __repr__(self) -> str:
        return f"LocalKeyProvider(key_id={self._key_id!r})"


def decode_master_key(encoded: str) -> bytes:
    """Base64 (standard or URL-safe) of exactly 32 bytes."""
    try:
        raw = base64.b64decode(encoded.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("KEEL_MASTER_KEY is not valid base64", field="master_key") from exc
    if len(raw) != 32:
        raise InvalidInput(
            f"KEEL_MASTER_KEY must decode to 32 bytes, not {len(raw)}", field="master_key"
        )
    return raw


def _read_key_file(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidInput(
            f"{path} is readable by others (mode {oct(mode & 0o777)}); run chmod 600 {path}",
            field="master_key",
        )
    return decode_master_key(path.read_text())


def _generate_key_file(path: Path) -> bytes:
    """Create the key file atomically with mode 0600; if another process won, use its key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    key = os.urandom(32)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return _read_key_file(path)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def local_key_provider(settings: Settings) -> LocalKeyProvider:
    """The provider for these settings: `KEEL_MASTER_KEY`, else (outside production) the
    development key file `<home>/master.key`, generated on first use."""
    if settings.master_key is not None:
        return LocalKeyProvider(decode_master_key(settings.master_key.get_secret_value()))
    if settings.env == "production":
        raise InvalidInput("KEEL_MASTER_KEY is required in production", field="master_key")
    path = settings.home / MASTER_KEY_FILE
    if path.exists():
        return LocalKeyProvider(_read_key_file(path))
    key = _generate_key_file(path)
    logger.warning(
        "generated a development master key at %s (mode 0600); set KEEL_MASTER_KEY outside "
        "development — losing this file makes every stored secret unreadable",
        path,
    )
    return LocalKeyProvider(key, generated_at=path)


__all__ = [
    "DecryptionFailed",
    "KeyProvider",
    "LocalKeyProvider",
    "decode_master_key",
    "local_key_provider",
]
