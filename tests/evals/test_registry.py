from __future__ import annotations

import pytest

from keel.errors import NotFound
from keel.evals.registry import PromptRegistry
from keel.store.database import Database


def test_push_is_content_addressed_and_versions_count_up(db: Database) -> None:
    reg = PromptRegistry(db)
    assert reg.push("p", "Hello {{user_locale}}") == 1
    assert reg.push("p", "Hello {{user_locale}}") == 1
    assert reg.push("p", "Hi {{user_locale}}") == 2
    assert [v.version for v in reg.versions("p")] == [1, 2]


def test_alias_moves_are_resolved_and_kept_in_history(db: Database) -> None:
    reg = PromptRegistry(db)
    reg.push("p", "one")
    reg.push("p", "two")
    reg.set_alias("p", "production", 1, actor="alice", reason="seed")
    assert reg.resolve("p", "production").template == "one"
    reg.set_alias("p", "production", 2, actor="bob", reason="better")
    assert reg.resolve("p", "production").version == 2
    assert reg.resolve("p", "1").template == "one"
    moves = reg.history("p", "production")
    assert [(m.from_version, m.to_version, m.actor) for m in moves] == [
        (None, 1, "alice"),
        (1, 2, "bob"),
    ]


def test_unknown_alias_and_version_are_not_found(db: Database) -> None:
    reg = PromptRegistry(db)
    reg.push("p", "one")
    with pytest.raises(NotFound):
        reg.resolve("p", "staging")
    with pytest.raises(NotFound):
        reg.set_alias("p", "production", 9)
