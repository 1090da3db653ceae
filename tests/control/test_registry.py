"""The tool registry: tools.yaml (python, http from OpenAPI, sql) and @keel_tool declarations,
what the Cedar schema learns from them, who may use a tool, and every problem reported as
`file:field: reason`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from keel.agents.loader import discover_agents
from keel.control.registry import (
    ToolRegistry,
    cedar_arguments,
    deployment_tool_defs,
    load_deployment_tools,
    parse_rate_limit,
)
from keel.errors import SpecError
from tests.control.harness import DEPLOYMENT


def _problems(root: Path, text: str) -> list[str]:
    (root / "tools.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        load_deployment_tools([root])
    return [str(p) for p in err.value.problems]


def test_the_deployment_tools_load_with_their_governance_fields() -> None:
    tools = load_deployment_tools([DEPLOYMENT])
    assert sorted(tools) == ["archive_purge", "crm_company", "crm_note", "old_lookup"]
    crm = tools["crm_company"]
    assert (crm.kind, crm.options.credential, crm.cost_usd) == (
        "http",
        "crm-token",
        Decimal("0.002"),
    )
    assert crm.options.rate_limit is not None and crm.options.rate_limit.capacity == 100
    assert crm.input_schema["required"] == ["company_id"]
    assert crm.input_schema["properties"]["verbose"] == {"type": "boolean"}  # from a $ref
    assert "X-Request-Id" in crm.input_schema["properties"]
    note = tools["crm_note"]
    assert note.input_schema["properties"]["body"]["required"] == ["text"]
    assert note.input_schema["required"] == ["body", "company_id"]
    assert not crm.schema_validated and tools["old_lookup"].schema_validated
    assert tools["archive_purge"].unavailable(date.today()) == "is disabled"
    defs = deployment_tool_defs(tools)
    assert defs["crm_company"].json_schema == crm.input_schema
    assert defs["archive_purge"].unavailable == "is disabled"


def test_the_cedar_schema_sees_kind_tags_attributes_and_argument_types() -> None:
    descriptor = load_deployment_tools([DEPLOYMENT])["crm_company"].descriptor()
    assert descriptor.kind == "http" and descriptor.tags == ("crm", "external")
    assert descriptor.attributes == {"version": "1", "sensitivity": "medium", "cost_usd": 0.002}
    assert descriptor.arguments == {"company_id": "String", "verbose": "Bool?"}
    schema = {
        "type": "object",
        "properties": {
            "amount": {"type": "number"},
            "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "labels": {"type": "array", "items": {"type": "string"}},
            "stage": {"$ref": "#/$defs/Stage"},
            "blob": {"type": "object"},
        },
        "required": ["amount", "stage"],
        "$defs": {"Stage": {"enum": ["a", "b"]}},
    }
    assert cedar_arguments(schema) == {
        "amount": "Decimal", "n": "Long?", "labels": "Set<String>?", "stage": "String",
    }  # fmt: skip


def test_rate_limits_read_like_prose() -> None:
    assert parse_rate_limit("30/minute") == {"capacity": 30.0, "refill_per_second": 0.5}
    assert parse_rate_limit("2 / hour")["refill_per_second"] == pytest.approx(2 / 3600)
    with pytest.raises(ValueError, match="not like '30/minute'"):
        parse_rate_limit("fast")


def test_tools_yaml_problems_name_the_file_and_field(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        """tools:
  - name: a
    kind: ftp
  - name: b
    colour: red
  - name: c
    rate_limit: lots
  - name: d
    kind: http
  - name: e
    kind: http
    openapi: api.yaml
    operation: nope
  - name: f
    function: no_such_module:thing
  - name: 9lives
    function: os:getcwd
""",
    )
    rel = f"{tmp_path.name}/tools.yaml"
    assert any(p.startswith(f"{rel}:tools.0.kind:") for p in problems)
    assert any(p.startswith(f"{rel}:tools.1.colour:") for p in problems)
    assert any(p.startswith(f"{rel}:tools.2.rate_limit:") and "30/minute" in p for p in problems)
    assert f"{rel}:tools.3.openapi: http tools need openapi and operation" in problems
    assert any(p.startswith(f"{rel}:tools.4.operation: cannot read api.yaml") for p in problems)
    assert any(p.startswith(f"{rel}:tools.5.function: cannot import") for p in problems)
    assert f"{rel}:tools.6.name: a letter, then letters, digits, _" in problems


def test_an_unknown_operation_is_named(tmp_path: Path) -> None:
    (tmp_path / "api.yaml").write_text((DEPLOYMENT / "crm.openapi.yaml").read_text())
    [problem] = _problems(
        tmp_path,
        "tools:\n  - name: e\n    kind: http\n    openapi: api.yaml\n    operation: nope\n",
    )
    assert problem.endswith("tools.0.operation: no operation with operationId 'nope'")


def test_a_tool_name_is_unique_across_the_deployment(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for root in (one, two):
        root.mkdir()
        (root / "tools.yaml").write_text("tools:\n  - name: same\n    function: os.path:basename\n")
    with pytest.raises(SpecError) as err:
        load_deployment_tools([one, two])
    assert "duplicate tool 'same'" in str(err.value)


def test_agent_tools_carry_their_keel_tool_declarations() -> None:
    tools = load_deployment_tools([DEPLOYMENT])
    agents = discover_agents([DEPLOYMENT], tool_registry=deployment_tool_defs(tools))
    registry = ToolRegistry.build(tools, agents.values())
    transfer = registry.get("transfer_funds")
    assert transfer is not None and transfer.cost_usd == Decimal("0.05")
    assert transfer.source == "clerk/tools.py" and transfer.options.sensitivity == "medium"
    assert transfer.descriptor().arguments == {"amount": "Long", "to_account": "String"}
    insights = registry.get("enterprise_insights")
    assert insights is not None
    today = date.today()
    assert insights.refusal("t1", "standard", today) == (
        "tool 'enterprise_insights' is not enabled on the 'standard' tier"
    )
    assert insights.refusal("t1", "enterprise", today) is None
    assert len(registry) == len(registry.descriptors()) == 11  # 4 deployment + 7 of clerk


def _agent(root: Path, name: str, tools_py: str) -> None:
    folder = root / name
    folder.mkdir()
    (folder / "agent.yaml").write_text(
        f"name: {name}\nmodel: {{default: 'offline:chat'}}\ntools: [lookup]\n"
    )
    (folder / "prompt.md").write_text("hi")
    (folder / "tools.py").write_text(tools_py)


def test_bad_declarations_and_clashing_tools_are_reported(tmp_path: Path) -> None:
    header = "from keel.control.registry import keel_tool\n\n"
    _agent(tmp_path, "a", header + "@keel_tool(cost_usd=-1, colour='red')\n"
           "def lookup(ctx, q: str) -> str:\n    return q\n")  # fmt: skip
    with pytest.raises(SpecError) as err:
        ToolRegistry.build({}, discover_agents([tmp_path]).values())
    problems = [str(p) for p in err.value.problems]
    assert any(p.startswith("a/tools.py:cost_usd:") for p in problems)
    assert any(p.startswith("a/tools.py:colour:") for p in problems)
    (tmp_path / "a" / "tools.py").write_text(
        header + "@keel_tool(sensitivity='high')\ndef lookup(ctx, q: str) -> str:\n    return q\n"
    )
    _agent(tmp_path, "b", "def lookup(ctx, q: str) -> str:\n    return q\n")
    with pytest.raises(SpecError) as err:
        ToolRegistry.build({}, discover_agents([tmp_path]).values())
    assert "tool 'lookup' is declared differently in a/tools.py" in str(err.value)
