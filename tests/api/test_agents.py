"""`/v1/agents`: listing and describing the deployed agents (schemas, model, prompt alias →
version, tools, runners)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import (
    Api,
    assert_problem,
    build_app,
    client_for,
    field_names,
    make_settings,
)


async def describe(api: Api, name: str) -> dict[str, Any]:
    response = await api.client.get(
        f"/v1/agents/{name}", headers=api.headers(scopes=("runs:read",))
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_chat_agent_is_described_with_its_schemas_model_prompt_and_tools(api: Api) -> None:
    rune = await describe(api, "rune")
    assert rune["name"] == "rune" and "construction-projects" in rune["description"]
    assert rune["input_schema"]["required"] == ["question"]
    assert set(rune["input_schema"]["properties"]) == {"question", "locale"}
    assert rune["output_kind"] == "text" and rune["output_schema"] == {"type": "string"}
    assert rune["model"]["default"] == "offline:chat"
    assert rune["model"]["routes"] == [
        {"when": {"locale": ["fi", "cs", "sk"]}, "model": "offline:large"}
    ]
    assert rune["prompt"]["name"] == "rune" and rune["prompt"]["alias"] == "production"
    assert rune["prompt"]["version"] == 1
    assert rune["prompt"]["aliases"] == {"production": 1, "latest": 1}
    assert [t["name"] for t in rune["tools"]] == [
        "search_projects",
        "project_details",
        "company_contacts",
        "query_database",
    ]
    assert not any(t["requires_approval"] for t in rune["tools"])
    assert rune["runners"] == ["interactive"] and rune["double_texting"] == "enqueue"
    assert rune["timeout_seconds"] == 120 and len(rune["spec_version"]) == 64


async def test_a_typed_agent_is_described_with_its_output_schema_and_both_runners(
    api: Api,
) -> None:
    card = await describe(api, "sales-card")
    assert card["output_kind"] == "object"
    assert {"headline", "key_facts", "suggested_next_step"} <= set(
        card["output_schema"]["properties"]
    )
    assert set(card["input_schema"]["required"]) == {"project_id", "role"}
    assert card["runners"] == ["interactive", "batch"]


async def test_tools_that_need_approval_are_marked(live: Api) -> None:
    payments = await describe(live, "payments")
    assert payments["tools"] == [
        {"name": "pay_invoice", "description": payments["tools"][0]["description"],
         "requires_approval": True}
    ]  # fmt: skip


async def test_unknown_or_malformed_agent_names(api: Api) -> None:
    assert_problem(await api.client.get("/v1/agents/nobody", headers=api.headers()), 404)
    bad = await api.client.get("/v1/agents/bad%20name!", headers=api.headers())
    assert field_names(bad) == ["path.name"]
    assert_problem(await api.client.get("/v1/agents/rune"), 401)


async def test_without_a_runtime_agents_are_listed_by_name_and_not_described(
    db: Any, tmp_path: Any
) -> None:
    app = build_app(db, make_settings(tmp_path))
    async with client_for(app) as client:
        api = Api(app, client, db)
        listed = await client.get("/v1/agents", headers=api.headers())
        assert listed.json() == {
            "data": [
                {"name": "rune", "description": None},
                {"name": "sales-card", "description": None},
            ]
        }
        assert_problem(await client.get("/v1/agents/rune", headers=api.headers()), 503)
