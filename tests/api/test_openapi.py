"""The committed `openapi.json` is the app's schema, and every route documents its problems."""

from __future__ import annotations

import json
from pathlib import Path

from keel.api.openapi import REGENERATE, build_openapi

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi.json"


def test_the_committed_openapi_document_matches_the_app() -> None:
    assert COMMITTED.exists(), f"openapi.json is missing; generate it with: {REGENERATE}"
    committed = json.loads(COMMITTED.read_text())
    assert committed == build_openapi(), (
        f"openapi.json is out of date with the app; regenerate it with: {REGENERATE}"
    )


def test_every_v1_operation_documents_its_problem_responses() -> None:
    schema = build_openapi()
    operations = [
        (path, method, op)
        for path, item in schema["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]
    assert len(operations) >= 7
    for path, method, op in operations:
        responses = op["responses"]
        expected = {"401", "429", "500"}
        if "{" in path:
            expected |= {"404", "422"}
        if method in ("post", "delete") or op.get("parameters"):
            expected.add("422")
        if method == "post":
            expected |= {"409", "413"}
        assert expected <= set(responses), (path, method, sorted(responses))
        for status, response in responses.items():
            if status[0] in "45":
                assert list(response["content"]) == ["application/problem+json"], (path, status)
        assert op.get("security"), (path, method)
