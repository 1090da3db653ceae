"""The fabric's extension points: run-time checks that block delivery, prompt routing, run-end
listeners, and capabilities wrapped around every tool call."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic_ai import RunContext
from pydantic_ai.capabilities import AbstractCapability

from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent
from keel.fabric.catalog import AgentCatalog
from keel.fabric.events import EventType
from keel.fabric.extensions import CheckOutcome, FabricExtensions
from keel.fabric.runs import RunView
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.database import Database
from keel.store.tables import Run
from keel.store.types import utcnow

QUESTION = {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"}


class BlockMentionsOf:
    def __init__(self, word: str) -> None:
        self.word = word

    def check(
        self,
        agent: LoadedAgent,
        run_input: dict[str, Any],
        output: dict[str, Any],
        meta: dict[str, Any],
    ) -> CheckOutcome:
        found = self.word in str(output)
        return CheckOutcome(
            blocked=found,
            reasons=(f"mentions {self.word}",) if found else (),
            scores={"clean": 0.0 if found else 1.0},
        )


class EveryoneOnVersion:
    def __init__(self, version: int) -> None:
        self.version = version

    def route(self, agent: LoadedAgent, prompt_name: str, alias: str, user_id: str) -> int | None:
        return self.version if user_id == "canary-user" else None


class CountTools(AbstractCapability[RunDeps]):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def wrap_tool_execute(
        self, ctx: RunContext[RunDeps], *, call: Any, tool_def: Any, args: Any, handler: Any
    ) -> Any:
        self.calls.append(call.tool_name)
        return await handler(args)


@pytest.fixture
def extended(
    fabric_settings: Settings,
) -> Iterator[tuple[Fabric, FabricExtensions, CountTools, list[RunView]]]:
    db = Database.from_settings(fabric_settings)
    db.upgrade()
    ensure_tenant(db, "t1")
    counter = CountTools()
    finished: list[RunView] = []
    ext = FabricExtensions(
        capabilities=[lambda loaded: [counter]],
        output_checks=[BlockMentionsOf("Danderyd")],
        on_finished=[finished.append],
    )
    catalog = AgentCatalog.load(fabric_settings, db)
    catalog.prompts.push("rune", "Answer in Danish.", {})  # version 2
    ext.prompt_router = EveryoneOnVersion(2)
    fab = Fabric(fabric_settings, db, catalog, extensions=ext)
    fab.start(execute=True)
    yield fab, ext, counter, finished
    fab.stop()
    db.dispose()


async def test_a_blocking_check_ends_the_run_blocked_and_delivers_nothing(
    extended: Any, alice: Principal
) -> None:
    fab, _ext, counter, finished = extended
    view = fab.submit(alice, "rune", QUESTION)
    done = await fab.wait("t1", view.id, timeout=30)
    assert done.status == "blocked" and done.output is None
    assert done.error is not None and done.error["reasons"] == ["mentions Danderyd"]
    checks = [e for e in fab.events("t1", view.id) if e.type == EventType.CHECK]
    assert checks[0].data == {
        "blocked": True,
        "reasons": ["mentions Danderyd"],
        "scores": {"clean": 0.0},
    }
    # the refused answer reached no event a client can read, and no copy of it is kept
    assert "Jag hittade" not in str([e.data for e in fab.events("t1", view.id)])
    with fab.db.transaction() as s:
        row = s.get(Run, view.id)
        assert row is not None and row.partial_text is None and row.messages is None
        workflow_id = row.workflow_id
    # nor do DBOS's step checkpoints (the model request's recorded answer) outlive the refusal
    assert workflow_id is not None and fab.engine.steps(workflow_id)
    assert fab.purge_refused(now=utcnow() + timedelta(minutes=5)) == 1
    assert fab.engine.status(workflow_id) is None and not fab.engine.steps(workflow_id)
    assert fab.get("t1", view.id).status == "blocked"
    assert fab.purge_refused(now=utcnow() + timedelta(minutes=5)) == 0
    assert counter.calls == ["search_projects"]  # the extension wrapped the tool call
    await asyncio.sleep(0)
    assert [(v.id, v.status) for v in finished] == [(view.id, "blocked")]


async def test_a_prompt_router_sends_a_user_to_another_version(extended: Any) -> None:
    fab, *_ = extended
    canary = Principal(tenant_id="t1", user_id="canary-user")
    view = fab.submit(
        canary, "rune", {"question": "Which school projects in Malmö start this year?"}
    )
    assert view.prompt_version == 2
    assert fab.events("t1", view.id)[0].data["prompt_routed"] is True
    done = await fab.wait("t1", view.id, timeout=30)
    assert (
        done.status == "succeeded"
        and done.output is not None
        and done.output["text"].startswith("Jeg fandt")
    )
    assert (
        fab.submit(Principal(tenant_id="t1", user_id="other"), "rune", QUESTION).prompt_version == 1
    )
