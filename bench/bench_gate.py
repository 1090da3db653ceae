"""The tool gate's overhead per tool call, excluding the tool itself: p50/p95 of the gate's
decision path outside a workflow (same process, many iterations), against calling the tool
function directly.

    .venv/bin/python bench/bench_gate.py [--postgres URL] [--rounds N]

The tool is rune's `search_projects` (a governed named query over the sample database). The
gate runs on the example deployment with four realistic Cedar policies, on SQLite (WAL) by
default:

- `evaluate`: registry → arguments → budget state → Cedar → budget rules (the decision);
- `decide (audit)`: evaluate in a worker thread + rate limit + the audit-ledger entry (what
  the gate does with no fabric bound, e.g. an inline eval run);
- `decide (event+audit)`: the same with the fabric bound: the `tool.decision` run event and the
  audit entry in one transaction — the gate's full per-call cost in a durable run, except the
  DBOS step checkpoint itself;
- `after the tool`: the execution scope plus scrubbing and tool-output guardrails of the result
  (inside the tool's step);
- each again with a tenant budget set (two more aggregate queries).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.agents.deps import RunDeps
from keel.control.gate import Gate, GateCall, GatedToolset
from keel.control.plane import ControlPlane
from keel.fabric.activities import Activities
from keel.fabric.catalog import AgentCatalog
from keel.fabric.engine import DurableEngine
from keel.fabric.notify import LocalNotifier
from keel.fabric.runs import RunStore
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.settings import Settings
from keel.store.database import Database
from keel.store.tables import Run
from keel.store.types import utcnow

ROOT = Path(__file__).resolve().parents[1]
POLICIES = """
@id("permit-registered-tools") permit (principal, action, resource);
@id("sensitive-at-night") forbid (principal, action, resource)
  when { resource.sensitivity == "high" && context.now.toTime() < duration("6h") };
@id("expensive-when-throttled") forbid (principal, action, resource)
  when { context.throttled && resource.cost_usd.greaterThanOrEqual(decimal("0.01")) }
  unless { context.has_human_approval };
@id("contacts-for-sales") forbid (principal, action == Keel::Action::"company_contacts", resource)
  unless { principal.user.roles.contains("sales") };
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def measure_sync(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    for _ in range(min(100, rounds)):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


async def measure_async(fn: Callable[[], Awaitable[object]], rounds: int) -> tuple[float, float]:
    for _ in range(min(100, rounds)):
        await fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return percentiles(samples)


def line(name: str, subject: tuple[float, float], baseline: tuple[float, float]) -> None:
    p50, p95 = subject
    print(
        f"{name:<40} p50 {p50 * 1e3:7.3f} ms  p95 {p95 * 1e3:7.3f} ms  "
        f"{p50 / baseline[0]:6.2f}x the tool's p50"
    )


class _Ctx:
    """What a tool function reads from its RunContext (deps, tool call id)."""

    def __init__(self, deps: RunDeps) -> None:
        self.deps = deps
        self.tool_call_id = "call_1"


async def main(database_url: str | None, rounds: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="keel-bench-gate-"))
    (tmp / "policies").mkdir()
    (tmp / "policies" / "bench.cedar").write_text(POLICIES)
    settings = Settings(  # type: ignore[call-arg]
        env="test", home=tmp / "home", database_url=database_url or f"sqlite:///{tmp}/keel.db",
        agents_dirs=[ROOT / "examples" / "agents"], policy_dirs=[tmp / "policies"],
        _env_file=None,
    )  # fmt: skip
    db = Database.from_settings(settings)
    db.upgrade()
    ensure_tenant(db, "acme")
    catalog = AgentCatalog.load(settings, db)
    plane = ControlPlane.build(settings, db, catalog)
    loaded = catalog.get("rune")
    principal = Principal(tenant_id="acme", user_id="alice", roles=("sales",))
    run_id = new_id("run")
    with db.transaction() as s:
        s.add(Run(id=run_id, tenant_id="acme", user_id="alice", principal=principal.model_dump(mode="json"),
                  agent="rune", spec_version=loaded.version, model="offline:chat", input={},
                  status="running", created_at=utcnow()))  # fmt: skip
    deps = RunDeps(
        run_id=run_id, tenant_id="acme", user_id="alice", agent="rune", data_dir=settings.home
    )
    args: dict[str, Any] = {"category": "hospital", "city": "Stockholm",
                            "starts_in_year": datetime.now(UTC).year}  # fmt: skip
    tool = loaded.tools["search_projects"].function
    ctx: Any = _Ctx(deps)
    full_args = {"region": None, "stage": None, "limit": 10, **args}
    assert len(tool(ctx, **full_args)) == 2

    gate = Gate(plane)
    call = GateCall(run_id, "acme", "alice", "rune", "search_projects", "call_1", args)
    assert gate.evaluate(call).decision.value == "ALLOW"
    toolset = GatedToolset(loaded_toolset_stub(), plane=plane, loaded=loaded)
    result = tool(ctx, **full_args)

    direct = measure_sync(lambda: tool(ctx, **full_args), rounds)
    print(f"sqlite={db.is_sqlite}  rounds={rounds}  python {sys.version.split()[0]}")
    print(
        f"{'the tool, called directly':<40} p50 {direct[0] * 1e3:7.3f} ms  p95 {direct[1] * 1e3:7.3f} ms"
    )
    for budgeted in (False, True):
        if budgeted:
            plane.budgets.set_limit("acme", monthly_tokens=10_000_000, actor="bench")
            print("-- with a tenant budget set")
        plane.activities = None
        line("gate: evaluate", measure_sync(lambda: gate.evaluate(call), rounds), direct)
        line("gate: decide (audit)", await measure_async(lambda: gate.decide(call), rounds), direct)
        # what `plane.bind(fabric)` does, without starting a fabric
        plane.activities = Activities(
            RunStore(db, LocalNotifier()), DurableEngine(settings, db), settings
        )
        line(
            "gate: decide (event+audit)",
            await measure_async(lambda: gate.decide(call), rounds),
            direct,
        )
        line(
            "gate: after the tool (scrub+guardrails)",
            await measure_async(
                lambda: toolset._guard(plane.registry.get("search_projects"), deps, "c", result),
                rounds,
            ),  # type: ignore[arg-type]
            direct,
        )
    db.dispose()


def loaded_toolset_stub() -> Any:
    from pydantic_ai.toolsets import FunctionToolset

    return FunctionToolset([])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--rounds", type=int, default=2000)
    options = parser.parse_args()
    asyncio.run(main(options.postgres, options.rounds))
