"""API keys: hashed at rest, scoped, revocable, audited through a hook; and `keel keys`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keel.cli.main import app as cli
from keel.errors import InvalidInput, NotFound, Unauthorized
from keel.identity import keys
from keel.settings import get_settings
from keel.store.database import Database
from keel.store.tables import ApiKey


def test_a_key_is_stored_only_as_a_hash_and_authenticates(db: Database) -> None:
    created = keys.create_key(db, "acme", "anna", ("conversations:read",), "ci")
    assert created.secret.startswith("keel_sk_") and created.id.startswith("key_")
    with db.transaction() as s:
        row = s.scalars(select(ApiKey)).one()
        assert created.secret not in (row.secret_hash, row.prefix)
        assert row.secret_hash == keys.hash_secret(created.secret)
    principal = keys.authenticate(db, created.secret)
    assert (principal.tenant_id, principal.user_id) == ("acme", "anna")
    assert principal.scopes == ("conversations:read",)


def test_authentication_records_last_use(db: Database) -> None:
    created = keys.create_key(db, "acme")
    assert keys.list_keys(db)[0].last_used_at is None
    keys.authenticate(db, created.secret)
    assert keys.list_keys(db)[0].last_used_at is not None


def test_revoked_and_unknown_keys_are_unauthorized(db: Database) -> None:
    created = keys.create_key(db, "acme")
    keys.revoke_key(db, created.id)
    for secret in (created.secret, "keel_sk_unknown", "not-even-prefixed"):
        with pytest.raises(Unauthorized):
            keys.authenticate(db, secret)


def test_revoking_is_tenant_scoped_when_asked(db: Database) -> None:
    created = keys.create_key(db, "acme")
    with pytest.raises(NotFound):
        keys.revoke_key(db, created.id, tenant_id="globex")
    with pytest.raises(NotFound):
        keys.revoke_key(db, "key_missing")
    assert keys.revoke_key(db, created.id, tenant_id="acme").revoked_at is not None


def test_unknown_scopes_are_refused_naming_the_field(db: Database) -> None:
    with pytest.raises(InvalidInput) as caught:
        keys.create_key(db, "acme", scopes=("conversations:read", "god-mode"))
    assert caught.value.field == "scopes"


def test_every_change_goes_through_the_hook(db: Database) -> None:
    changes: list[keys.KeyChange] = []
    created = keys.create_key(db, "acme", "anna", on_change=changes.append)
    keys.revoke_key(db, created.id, on_change=changes.append)
    keys.revoke_key(db, created.id, on_change=changes.append)  # already revoked: no change
    assert [(c.action, c.key.id) for c in changes] == [
        ("created", created.id),
        ("revoked", created.id),
    ]
    assert all(created.secret not in repr(c) for c in changes)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{(tmp_path / 'cli.db').as_posix()}"
    monkeypatch.setenv("KEEL_DATABASE_URL", url)
    get_settings.cache_clear()
    db = Database(url)
    db.upgrade()
    yield db
    db.dispose()
    get_settings.cache_clear()


def test_cli_creates_lists_and_revokes_keys(cli_env: Database) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--tenant",
            "acme",
            "--user",
            "anna",
            "--scopes",
            "conversations:read,conversations:write",
            "--name",
            "ui",
        ],
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("keel_sk_")
    assert "shown once" in made.stderr
    assert keys.authenticate(cli_env, secret).scopes == (
        "conversations:read",
        "conversations:write",
    )

    listed = runner.invoke(cli, ["keys", "list", "--tenant", "acme"])
    assert listed.exit_code == 0
    assert secret not in listed.output and secret[:14] in listed.output
    assert "conversations:read,conversations:write" in listed.output
    key_id = keys.list_keys(cli_env)[0].id

    revoked = runner.invoke(cli, ["keys", "revoke", key_id])
    assert revoked.exit_code == 0 and key_id in revoked.output
    as_json = runner.invoke(cli, ["keys", "list", "--json"])
    entry = json.loads(as_json.stdout.strip())
    assert entry["id"] == key_id and entry["revoked_at"] is not None
    assert "secret" not in entry and secret not in as_json.stdout
    with pytest.raises(Unauthorized):
        keys.authenticate(cli_env, secret)


def test_cli_errors_are_messages_with_exit_codes(cli_env: Database) -> None:
    runner = CliRunner()
    bad_scope = runner.invoke(cli, ["keys", "create", "--tenant", "acme", "--scopes", "root"])
    assert bad_scope.exit_code == 2 and "--scopes" in bad_scope.stderr
    missing = runner.invoke(cli, ["keys", "revoke", "key_nope"])
    assert missing.exit_code == 1 and "key_nope" in missing.stderr
