"""Property-based fuzzing of the committed `openapi.json` against the in-process app.

Positive and negative cases for every operation, with a valid API key, and the seeded
ids substituted for path parameters half the time so the 200 paths are reached too.
Checks: no 5xx, response bodies match their schemas, status codes and content types are
the documented ones. Bounded: a fixed number of examples per operation (~30 s here).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from keel.api.services.conversations import append_turn, create_conversation
from keel.identity.keys import create_key
from keel.identity.principal import Principal
from keel.store.database import Database
from tests.api.conftest import build_app, make_settings

OPENAPI = Path(__file__).resolve().parents[2] / "openapi.json"
EXAMPLES_PER_MODE = 25
BUDGET_SECONDS = 60.0
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


class EveryAgent:
    """An `AgentCatalog` knowing every name, so generated agent names reach the 201 path."""

    def exists(self, name: str) -> bool:
        return True

    def names(self) -> list[str]:
        return ["rune"]


@pytest.mark.slow
def test_the_api_honours_its_openapi_document(sqlite_db: Database, tmp_path: Any) -> None:
    app = build_app(sqlite_db, make_settings(tmp_path), agents=EveryAgent())
    secret = create_key(sqlite_db, "acme", "anna").secret
    principal = Principal(tenant_id="acme", user_id="anna", scopes=("*",))
    conversation = create_conversation(sqlite_db, principal, "rune", {}, metadata_max_bytes=1024)
    turn = append_turn(sqlite_db, principal, conversation.id, {"text": "hello"})
    seeded = {"conversation_id": conversation.id, "turn_id": turn.id}
    auth = {"Authorization": f"Bearer {secret}"}

    schema = schemathesis.openapi.from_path(OPENAPI)
    started = time.monotonic()
    ran = 0
    operations = [r.ok() for r in schema.get_all_operations()]
    # deleting the seeded conversation last keeps the other operations' 200 paths reachable
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    for operation in operations:
        names = {p.name for p in operation.path_parameters}
        strategies = []
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode))
            if names:
                fixed = {n: seeded[n] for n in names}
                strategies.append(
                    operation.as_strategy(generation_mode=mode, path_parameters=fixed)
                )

        @given(case=st.one_of(strategies))
        @settings(
            max_examples=EXAMPLES_PER_MODE * len(strategies),
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            # the generated credentials are noise; ours replace them (one credential only)
            if case.headers:
                case.headers.pop("X-API-Key", None)
            response = case.call(app=app, headers=auth)
            case.validate_response(response, checks=CHECKS)

        exercise()
        ran += 1
        assert time.monotonic() - started < BUDGET_SECONDS, "schemathesis run over budget"
    assert ran >= 7
