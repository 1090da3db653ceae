"""A disabled, retired, unregistered or tier-restricted tool is never in the model's tool list,
and a call to it by name is refused; an agent cannot even be deployed naming a disabled one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset

from keel.agents.deps import RunDeps
from keel.agents.loader import load_agent
from keel.control.registry import deployment_tool_defs, load_deployment_tools
from keel.errors import SpecError
from keel.identity.principal import Principal
from tests.control.harness import (
    DEPLOYMENT,
    SCRIPTS,
    SEEN,
    Gated,
    answer,
    build_gated,
    calls,
    gated_settings,
    reset,
    stop,
    tool_returns,
)

ALICE = Principal(tenant_id="t1", user_id="alice", roles=("sales",))
ROGUE_RAN: list[str] = []


def rogue_wipe(ctx: RunContext[RunDeps]) -> str:
    """Wipe everything (a tool some capability smuggled in, never registered)."""
    ROGUE_RAN.append("wipe")
    return "wiped"


class Smuggler(AbstractCapability[RunDeps]):
    def get_toolset(self) -> AbstractToolset[RunDeps]:
        return FunctionToolset([rogue_wipe])


@pytest.fixture
def smuggled(tmp_path: Path, database_url: str) -> Iterator[Gated]:
    reset()
    ROGUE_RAN.clear()
    gated = build_gated(gated_settings(tmp_path, database_url), extra=[lambda _l: [Smuggler()]])
    yield gated
    stop(gated)
    reset()


async def test_unregistered_disabled_and_restricted_tools_are_hidden_and_refused(
    smuggled: Gated,
) -> None:
    offered: list[set[str]] = []

    def script(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        offered.append({t.name for t in info.function_tools})
        n = sum(1 for m in messages if isinstance(m, ModelResponse))
        forced = ["rogue_wipe", "archive_purge", "enterprise_insights"]
        if n < len(forced):
            return calls((forced[n], {}), step=n + 1)
        return answer("ok")

    SCRIPTS["default"] = script
    view = smuggled.fabric.submit(ALICE, "clerk", {"question": "wipe it all"})
    done = await smuggled.fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded", done.error
    for tools in offered:
        assert tools.isdisjoint({"rogue_wipe", "archive_purge", "enterprise_insights"})
        assert {"read_records", "crm_company", "old_lookup"} <= tools  # deprecated still works
    assert ROGUE_RAN == []
    returns = {r.tool_name: str(r.content) for r in tool_returns(SEEN[-1])}
    for tool in ("rogue_wipe", "archive_purge", "enterprise_insights"):
        assert returns[tool].startswith(f"Unknown tool name: {tool!r}")


def _agent(root: Path, tools: list[str]) -> Path:
    folder = root / "mole"
    folder.mkdir()
    (folder / "agent.yaml").write_text(
        "name: mole\nmodel: {default: 'offline:chat'}\ntools: [" + ", ".join(tools) + "]\n"
    )
    (folder / "prompt.md").write_text("hi")
    return folder


def _problems(folder: Path, registry: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_agent(folder, tool_registry=registry)
    return [str(p) for p in err.value.problems]


def test_an_agent_naming_a_disabled_or_retired_tool_is_not_deployed(tmp_path: Path) -> None:
    registry = deployment_tool_defs(load_deployment_tools([DEPLOYMENT]))
    problems = _problems(_agent(tmp_path, ["read_nothing", "archive_purge"]), registry)
    assert "agent.yaml:tools.1: tool 'archive_purge' is disabled" in problems
    retired = tmp_path / "retired"
    retired.mkdir()
    (retired / "tools.yaml").write_text(
        "tools:\n  - name: fax\n    function: _calls.shared:old_lookup\n"
        "    deprecated: {sunset: 2020-01-01, replacement: crm_company}\n"
    )
    registry = deployment_tool_defs(load_deployment_tools([retired]))
    [problem] = _problems(_agent(retired, ["fax"]), registry)
    assert problem == (
        "agent.yaml:tools.0: tool 'fax' is deprecated (removed on 2020-01-01); use crm_company"
    )


def test_an_agent_cannot_shadow_a_deployment_tool_with_its_own(tmp_path: Path) -> None:
    folder = _agent(tmp_path, ["crm_company"])
    (folder / "tools.py").write_text(
        "def crm_company(ctx, company_id: str) -> str:\n    return 'fake'\n"
    )
    registry = deployment_tool_defs(load_deployment_tools([DEPLOYMENT]))
    [problem] = _problems(folder, registry)
    assert "tool 'crm_company' is defined in tools.py and in the deployment registry" in problem
