from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select, text, update

from keel.control.keys import (
    DecryptionFailed,
    KeyProvider,
    LocalKeyProvider,
    local_key_provider,
)
from keel.control.ledger import Ledger
from keel.control.redactor import SecretRedactor
from keel.control.vault import Vault
from keel.errors import InvalidInput, NotFound
from keel.settings import Settings
from keel.store.database import Database
from keel.store.tables import VaultDataKey, VaultSecret

TOKEN = "xoxb-1234-very-secret-token"


@pytest.fixture
def provider() -> LocalKeyProvider:
    return LocalKeyProvider(os.urandom(32))


@pytest.fixture
def vault(db: Database, provider: LocalKeyProvider) -> Vault:
    return Vault(db, provider, ledger=Ledger(db))


def test_put_get_round_trip_and_versions_count_up(vault: Vault) -> None:
    assert vault.put("acme", "slack/token", TOKEN, actor="alice") == 1
    assert vault.put("acme", "slack/token", SecretStr(TOKEN + "-v2"), actor="bob") == 2
    latest = vault.get("acme", "slack/token")
    assert (latest.version, latest.reveal(), latest.created_by) == (2, TOKEN + "-v2", "bob")
    assert vault.get("acme", "slack/token", version=1).reveal() == TOKEN


def test_values_never_show_in_repr_str_or_list(vault: Vault) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    secret = vault.get("acme", "api")
    for shown in (repr(secret), str(secret), f"{secret}", repr(secret.value), str(secret.value)):
        assert TOKEN not in shown
    infos = vault.list("acme")
    assert [(i.name, i.latest_version, i.live_versions) for i in infos] == [("api", 1, (1,))]
    assert TOKEN not in repr(infos)


def test_ciphertext_at_rest_is_not_the_plaintext(vault: Vault, db: Database) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    with db.transaction() as s:
        row = s.scalars(select(VaultSecret)).one()
        key_row = s.scalars(select(VaultDataKey)).one()
    assert row.ciphertext is not None and TOKEN.encode() not in row.ciphertext
    assert len(row.nonce or b"") == 12
    assert len(key_row.wrapped_key) == 12 + 32 + 16  # nonce + AES-256 key + GCM tag
    assert key_row.provider == "local"


def test_tenants_are_isolated(vault: Vault) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    with pytest.raises(NotFound):
        vault.get("globex", "api")
    assert vault.list("globex") == []


def test_ciphertext_copied_to_another_tenant_or_name_does_not_decrypt(
    vault: Vault, db: Database
) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    vault.put("globex", "api", "globex-own-value", actor="eve")
    vault.put("acme", "other", "acme-other-value", actor="alice")
    with db.transaction() as s:
        acme = s.scalars(
            select(VaultSecret).where(VaultSecret.tenant_id == "acme", VaultSecret.name == "api")
        ).one()
        stolen = (acme.ciphertext, acme.nonce)
        for tenant, name in (("globex", "api"), ("acme", "other")):
            s.execute(
                update(VaultSecret)
                .where(VaultSecret.tenant_id == tenant, VaultSecret.name == name)
                .values(ciphertext=stolen[0], nonce=stolen[1])
            )
    with pytest.raises(DecryptionFailed):
        vault.get("globex", "api")
    with pytest.raises(DecryptionFailed):
        vault.get("acme", "other")


def test_ciphertext_moved_to_another_version_does_not_decrypt(vault: Vault, db: Database) -> None:
    vault.put("acme", "api", "first-value", actor="alice")
    vault.put("acme", "api", "second-value", actor="alice")
    with db.transaction() as s:
        v1 = s.scalars(select(VaultSecret).where(VaultSecret.version == 1)).one()
        s.execute(
            update(VaultSecret)
            .where(VaultSecret.version == 2)
            .values(ciphertext=v1.ciphertext, nonce=v1.nonce)
        )
    with pytest.raises(DecryptionFailed):
        vault.get("acme", "api")


def test_wrapped_data_key_copied_to_another_tenant_does_not_unwrap(
    vault: Vault, db: Database
) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    vault.put("globex", "api", "globex-value", actor="eve")
    with db.transaction() as s:
        acme_key = s.scalars(select(VaultDataKey).where(VaultDataKey.tenant_id == "acme")).one()
        s.execute(
            update(VaultDataKey)
            .where(VaultDataKey.tenant_id == "globex")
            .values(wrapped_key=acme_key.wrapped_key)
        )
    with pytest.raises(DecryptionFailed):
        vault.get("globex", "api")


def test_another_master_key_cannot_read(db: Database, vault: Vault) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    other = Vault(db, LocalKeyProvider(os.urandom(32)))
    with pytest.raises(DecryptionFailed):
        other.get("acme", "api")


def test_delete_shreds_and_later_put_continues_numbering(vault: Vault, db: Database) -> None:
    vault.put("acme", "api", "one-value", actor="alice")
    vault.put("acme", "api", "two-value", actor="alice")
    assert vault.delete("acme", "api", actor="bob", version=2) == [2]
    assert vault.get("acme", "api").version == 1
    assert vault.delete("acme", "api", actor="bob") == [1]
    with pytest.raises(NotFound):
        vault.get("acme", "api")
    with pytest.raises(NotFound):
        vault.delete("acme", "api", actor="bob")
    with db.transaction() as s:
        rows = s.scalars(select(VaultSecret)).all()
    assert all(r.ciphertext is None and r.deleted_by == "bob" for r in rows)
    assert vault.put("acme", "api", "three-value", actor="alice") == 3
    assert vault.list("acme")[0].live_versions == (3,)


def test_writes_are_audited_in_the_same_transaction(vault: Vault, db: Database) -> None:
    vault.put("acme", "api", TOKEN, actor="alice")
    vault.delete("acme", "api", actor="bob")
    ledger = Ledger(db)
    entries = ledger.entries(tenant_id="acme")
    assert [(e.actor, e.data["action"]) for e in entries] == [("bob", "delete"), ("alice", "put")]
    assert all(TOKEN not in str(e.data) for e in entries)
    assert ledger.verify().ok


def test_bad_input_names_the_field(vault: Vault) -> None:
    cases = [
        (("acme", "bad name!", "v"), "name"),
        (("", "api", "v"), "tenant_id"),
        (("acme", "api", ""), "value"),
    ]
    for args, field in cases:
        with pytest.raises(InvalidInput) as info:
            vault.put(*args, actor="alice")
        assert info.value.field == field
    with pytest.raises(InvalidInput) as info:
        vault.put("acme", "api", "x" * (64 * 1024 + 1), actor="alice")
    assert info.value.field == "value"


def test_handed_out_values_are_registered_with_the_redactor(
    db: Database, provider: LocalKeyProvider
) -> None:
    redactor = SecretRedactor()
    vault = Vault(db, provider, redactor=redactor)
    vault.put("acme", "api", TOKEN, actor="alice")
    assert redactor.scrub(f"calling with {TOKEN}") == f"calling with {TOKEN}"
    vault.get("acme", "api")
    assert redactor.scrub(f"calling with {TOKEN}") == "calling with [REDACTED:secret]"


def test_local_provider_is_a_key_provider_and_binds_context(provider: LocalKeyProvider) -> None:
    assert isinstance(provider, KeyProvider)
    wrapped = provider.wrap(b"k" * 32, context=b"a")
    assert provider.unwrap(wrapped, context=b"a") == b"k" * 32
    with pytest.raises(DecryptionFailed):
        provider.unwrap(wrapped, context=b"b")


def test_development_master_key_is_generated_once_with_0600(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(env="development", home=tmp_path / "home", _env_file=None)  # type: ignore[call-arg]
    with caplog.at_level(logging.WARNING):
        first = local_key_provider(settings)
    path = tmp_path / "home" / "master.key"
    assert first.generated_at == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "generated a development master key" in caplog.text
    again = local_key_provider(settings)
    assert again.generated_at is None and again.key_id == first.key_id


def test_world_readable_key_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(env="development", home=tmp_path, _env_file=None)  # type: ignore[call-arg]
    local_key_provider(settings)
    (tmp_path / "master.key").chmod(0o644)
    with pytest.raises(InvalidInput, match="chmod 600"):
        local_key_provider(settings)


def test_master_key_from_settings_is_validated(tmp_path: Path) -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    ok = Settings(env="test", home=tmp_path, master_key=SecretStr(key), _env_file=None)  # type: ignore[call-arg]
    assert local_key_provider(ok).generated_at is None
    assert not (tmp_path / "master.key").exists()
    for bad in ("not base64!!", base64.b64encode(b"short").decode()):
        settings = Settings(env="test", home=tmp_path, master_key=SecretStr(bad), _env_file=None)  # type: ignore[call-arg]
        with pytest.raises(InvalidInput) as info:
            local_key_provider(settings)
        assert info.value.field == "master_key"


def test_put_on_sqlite_and_postgres_survives_a_missing_tenant_row(
    vault: Vault, db: Database
) -> None:
    """Secrets do not require a tenants row (the vault is usable before tenant setup)."""
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
    assert vault.put("new-tenant", "k", "value-123", actor="ops") == 1
