"""The eval plane on live runs: run-time checks, online sampling, canary rollouts with automatic
rollback, shadow runs — through a real fabric on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from keel.control.ledger import Ledger
from keel.evals.fabric_runner import EVAL_TENANT, EVAL_USER
from keel.evals.promotion import Evidence
from keel.evals.rollout import RolloutThresholds, assigned_to_candidate
from keel.fabric.events import EventType
from keel.identity.principal import Principal
from keel.store.tables import OnlineEval, RolloutRun

from .conftest import Delivered

PERSUASIVE = (
    "You pitch construction projects to a {{role}}. Use get_project. Write in "
    "{{response_language}}. The snapshot is 60–90 words. Be persuasive and enthusiastic."
)
CLOSING = (
    "You pitch construction projects to a {{role}}. Use get_project. Write in "
    "{{response_language}}. The snapshot is 60–90 words. Suggest a concrete next step, and end "
    "the snapshot with that next step."
)
INPUT = {"project_id": "X-1", "role": "buyer", "locale": "en"}


def user(name: str) -> Principal:
    return Principal(tenant_id="t1", user_id=name, scopes=("*",))


def evidence(d: Delivered) -> Evidence:
    suite = d.delivery.suites.by_name("pitch")
    assert suite is not None
    return Evidence.of(suite)


async def run(d: Delivered, principal: Principal, **kw: object) -> str:
    view = d.fabric.submit(principal, "pitch", dict(INPUT), **kw)  # type: ignore[arg-type]
    await d.fabric.wait(principal.tenant_id, view.id, timeout=30)
    await asyncio.to_thread(d.listened.wait, view.id)
    return view.id


async def test_a_blocking_scorer_ends_the_run_blocked_and_says_why(delivered: Delivered) -> None:
    version = delivered.catalog.prompts.push("pitch", PERSUASIVE, {})
    run_id = await run(delivered, user("ann"), prompt=str(version))
    done = delivered.fabric.get("t1", run_id)
    assert done.status == "blocked" and done.output is None
    assert done.error is not None
    assert done.error["reasons"] == ["no_superlatives: forbidden match 'outstanding'"]
    check = next(e for e in delivered.fabric.events("t1", run_id) if e.type == EventType.CHECK)
    assert check.data["blocked"] is True and check.data["scores"]["no_superlatives"] == 0.0


async def test_non_blocking_scores_are_recorded_per_prompt_version(delivered: Delivered) -> None:
    run_id = await run(delivered, user("ann"))
    assert delivered.fabric.get("t1", run_id).status == "succeeded"
    recorded = delivered.delivery.scores.for_run(run_id)
    assert recorded == {
        ("check", "schema"): 1.0,
        ("check", "words"): 1.0,
        ("check", "language"): 1.0,
        ("check", "no_superlatives"): 1.0,
    }
    by_version = {(v.prompt_version, v.source, v.metric): v.runs for v in
                  delivered.delivery.scores.by_version("pitch")}  # fmt: skip
    assert by_version[(1, "check", "words")] == 1


async def test_eval_runs_are_checked_but_kept_out_of_production_scores(
    delivered: Delivered,
) -> None:
    run_id = await run(delivered, Principal(tenant_id=EVAL_TENANT, user_id=EVAL_USER))
    events = delivered.fabric.events(EVAL_TENANT, run_id)
    assert any(e.type == EventType.CHECK for e in events)
    assert delivered.delivery.scores.for_run(run_id) == {}
    with delivered.db.transaction() as s:
        assert s.get(OnlineEval, run_id) is None


async def test_online_sampling_queues_runs_and_the_sweep_judges_them(delivered: Delivered) -> None:
    run_id = await run(delivered, user("ann"))
    with delivered.db.transaction() as s:
        row = s.get(OnlineEval, run_id)
        assert row is not None and row.status == "pending" and row.source == "online"
    await asyncio.to_thread(delivered.fabric.sweep)
    with delivered.db.transaction() as s:
        row = s.get(OnlineEval, run_id)
        assert row is not None and row.status == "done" and row.attempts == 1
    judged = delivered.delivery.scores.for_run(run_id)
    assert 0.0 <= judged[("online", "judge")] <= 1.0
    versions = {
        (v.prompt_version, v.source, v.metric)
        for v in delivered.delivery.scores.by_version("pitch")
    }
    assert (1, "online", "judge") in versions


async def test_a_regressing_canary_is_rolled_back_and_new_runs_use_the_baseline(
    delivered: Delivered,
) -> None:
    d = delivered
    candidate = d.catalog.prompts.push("pitch", PERSUASIVE, {})
    rollout = d.delivery.promotions.start_rollout(
        evidence(d), candidate, percent=50, thresholds=RolloutThresholds(min_runs=4),
        actor="alice", force=True, reason="try the enthusiastic pitch",
    )  # fmt: skip
    users = [f"user-{i}" for i in range(40)]
    canary = [u for u in users if assigned_to_candidate(rollout.id, u, 50)][:4]
    baseline = [u for u in users if not assigned_to_candidate(rollout.id, u, 50)][:4]
    ids = await asyncio.gather(*(run(d, user(u)) for u in canary + baseline))
    views = [d.fabric.get("t1", i) for i in ids]
    assert [v.prompt_version for v in views] == [candidate] * 4 + [1] * 4
    assert [v.status for v in views] == ["blocked"] * 4 + ["succeeded"] * 4
    # sticky: the same user gets the same version again
    assert d.fabric.submit(user(canary[0]), "pitch", dict(INPUT)).prompt_version == candidate

    [health] = d.delivery.monitor.evaluate()
    assert health.state == "rolled_back"
    assert health.reasons[0].startswith("canary error rate 100.0% vs baseline 0.0%")
    ended = d.delivery.promotions.rollouts.get(rollout.id)
    assert ended.status == "rolled_back" and "canary error rate" in ended.reason
    assert ended.ended_by == "rollout-monitor"
    moves = d.catalog.prompts.history("pitch", "production-canary")
    assert [(m.from_version, m.to_version) for m in moves] == [(None, candidate), (candidate, 1)]
    assert "auto_rollback" in moves[-1].reason and "error rate" in moves[-1].reason
    audit = Ledger(d.db).entries(kind="prompt_rollout", limit=10)
    assert audit[0].data["action"] == "auto_rollback" and audit[0].actor == "rollout-monitor"
    assert Ledger(d.db).verify().ok
    # every user, canary ones included, is back on production's version
    assert d.fabric.submit(user(canary[0]), "pitch", dict(INPUT)).prompt_version == 1
    assert d.delivery.monitor.evaluate() == []


async def test_a_healthy_canary_waits_for_enough_runs_and_stays(delivered: Delivered) -> None:
    d = delivered
    candidate = d.catalog.prompts.push("pitch", CLOSING, {})
    rollout = d.delivery.promotions.start_rollout(
        evidence(d), candidate, percent=50,
        # two runs a side: latency is noise at that size (health_reasons is tested alone)
        thresholds=RolloutThresholds(min_runs=2, max_latency_ratio=100),
        actor="alice", force=True, reason="closing step",
    )  # fmt: skip
    [waiting] = d.delivery.monitor.evaluate()
    assert waiting.state == "waiting"
    users = [f"u{i}" for i in range(30)]
    picked = [u for u in users if assigned_to_candidate(rollout.id, u, 50)][:2]
    picked += [u for u in users if not assigned_to_candidate(rollout.id, u, 50)][:2]
    await asyncio.gather(*(run(d, user(u)) for u in picked))
    [health] = d.delivery.monitor.evaluate()
    assert health.state == "healthy", health.reasons
    assert health.arms["canary"].runs == 2 and health.arms["baseline"].runs == 2
    assert d.delivery.promotions.rollouts.get(rollout.id).status == "active"


async def test_shadow_runs_the_candidate_on_the_same_input_once_and_never_delivers_it(
    delivered: Delivered,
) -> None:
    d = delivered
    candidate = d.catalog.prompts.push("pitch", CLOSING, {})
    rollout = d.delivery.promotions.start_rollout(
        evidence(d), candidate, percent=0, shadow=True, thresholds=RolloutThresholds(min_runs=1),
        actor="alice", force=True, reason="shadow the closing step",
    )  # fmt: skip
    prod_id = await run(d, user("ann"))
    prod = d.fabric.get("t1", prod_id)
    assert prod.prompt_version == 1
    shadows = [r for r in d.fabric.list_runs("t1") if r.parent_run_id == prod_id]
    assert len(shadows) == 1
    shadow = shadows[0]
    assert (shadow.prompt_version, shadow.lane, shadow.input) == (candidate, "batch", prod.input)
    assert shadow.idempotency_key == f"shadow:{prod_id}" and shadow.turn_id is None
    # a repeated notification submits nothing new
    d.delivery.shadow.on_finished(prod)
    assert [r.id for r in d.fabric.list_runs("t1") if r.parent_run_id == prod_id] == [shadow.id]
    await d.fabric.wait("t1", shadow.id, timeout=30)
    await asyncio.to_thread(d.listened.wait, shadow.id)
    stored = d.fabric.get("t1", shadow.id)
    assert stored.status == "succeeded" and stored.output is not None  # stored, not delivered
    await asyncio.to_thread(d.fabric.sweep)
    assert ("shadow", "judge") in d.delivery.scores.for_run(shadow.id)
    assert ("online", "judge") in d.delivery.scores.for_run(prod_id)
    with d.db.transaction() as s:
        arms = dict(
            s.execute(
                select(RolloutRun.run_id, RolloutRun.arm).where(RolloutRun.rollout_id == rollout.id)
            ).all()
        )
    assert arms == {prod_id: "baseline", shadow.id: "shadow"}


async def test_a_failing_periodic_job_does_not_stop_the_others(delivered: Delivered) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("judge provider down")

    delivered.fabric.extensions.periodic[:0] = [broken, lambda: ran.append("next")]
    await asyncio.to_thread(delivered.fabric.sweep)
    assert ran == ["next"]
