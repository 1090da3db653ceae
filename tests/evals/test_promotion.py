"""Eval-gated promotion: aliases move on a matching PASS report or a forced, audited reason, and
roll back like a stack."""

from __future__ import annotations

import pytest

from keel.control.ledger import Ledger
from keel.errors import Conflict, InvalidInput, NotFound
from keel.evals.promotion import Evidence, PromptPromotions
from keel.evals.registry import PromptRegistry
from keel.evals.report import GateReport
from keel.evals.report_store import EvalReportStore
from keel.evals.rollout import RolloutThresholds
from keel.store.database import Database

from .reports import report

DATASET = "9f2c" + "0" * 60
CONFIG = "c0f1" + "0" * 60
EVIDENCE = Evidence("sales-card", "sales-card", DATASET, CONFIG)


@pytest.fixture
def registry(db: Database) -> PromptRegistry:
    prompts = PromptRegistry(db)
    for i in range(1, 4):
        prompts.push("sales-card", f"template v{i}", {})
    prompts.set_alias("sales-card", "production", 1, actor="deploy", reason="seeded from file")
    return prompts


async def stored_report(
    db: Database, *, verdict: str = "PASS", candidate: int = 2, baseline: int = 1, **changes: str
) -> GateReport:
    base = await report("better" if verdict == "PASS" else "worse")
    fields = {
        "prompt_name": "sales-card",
        "candidate_version": candidate,
        "baseline_version": baseline,
        "dataset_version": DATASET,
        "config_hash": CONFIG,
        **changes,
    }
    return EvalReportStore(db).save(base.model_copy(update=fields))


def test_promotion_without_a_pass_report_is_refused_and_says_what_to_run(
    db: Database, registry: PromptRegistry
) -> None:
    with pytest.raises(Conflict) as refused:
        PromptPromotions(db).promote(EVIDENCE, 2, actor="alice")
    assert refused.value.message == (
        "no PASS report for sales-card v2 vs v1 on dataset 9f2c00000000… with eval config "
        "c0f100000000…; run `keel eval run sales-card --candidate 2`"
    )
    assert registry.aliases("sales-card")["production"] == 1


async def test_a_fail_report_or_one_on_another_dataset_does_not_count(
    db: Database, registry: PromptRegistry
) -> None:
    await stored_report(db, verdict="FAIL")
    stale = await stored_report(db, dataset_version="ab12" + "0" * 60)
    with pytest.raises(Conflict) as refused:
        PromptPromotions(db).promote(EVIDENCE, 2, actor="alice")
    assert f"report {stale.id} passed on dataset ab1200000000…, which changed since" in (
        refused.value.message
    )
    other_config = Evidence("sales-card", "sales-card", DATASET, "ffff" + "0" * 60)
    await stored_report(db)
    with pytest.raises(Conflict, match="eval config c0f100000000…"):
        PromptPromotions(db).promote(other_config, 2, actor="alice")


async def test_a_matching_pass_report_promotes_and_is_recorded_everywhere(
    db: Database, registry: PromptRegistry
) -> None:
    passed = await stored_report(db)
    change = PromptPromotions(db).promote(EVIDENCE, 2, actor="alice")
    assert (change.from_version, change.to_version, change.report_id) == (1, 2, passed.id)
    assert registry.aliases("sales-card")["production"] == 2
    move = registry.history("sales-card", "production")[-1]
    assert (move.from_version, move.to_version, move.actor) == (1, 2, "alice")
    assert passed.id in move.reason
    [entry] = Ledger(db).entries(kind="prompt_promotion")
    assert entry.subject == "sales-card@production" and entry.actor == "alice"
    assert entry.data["report_id"] == passed.id and entry.data["forced"] is False
    assert entry.data["dataset_version"] == DATASET


async def test_a_pass_against_another_baseline_does_not_promote(
    db: Database, registry: PromptRegistry
) -> None:
    await stored_report(db, candidate=3, baseline=2)
    with pytest.raises(Conflict, match="no PASS report for sales-card v3 vs v1"):
        PromptPromotions(db).promote(EVIDENCE, 3, actor="alice")


def test_forcing_needs_a_reason_and_is_audited(db: Database, registry: PromptRegistry) -> None:
    promotions = PromptPromotions(db)
    with pytest.raises(InvalidInput) as missing:
        promotions.promote(EVIDENCE, 3, actor="alice", force=True, reason="  ")
    assert missing.value.field == "reason"
    change = promotions.promote(EVIDENCE, 3, actor="alice", force=True, reason="hotfix for a typo")
    assert (change.action, change.to_version, change.report_id) == ("force_promote", 3, None)
    [entry] = Ledger(db).entries(kind="prompt_promotion")
    assert entry.data["forced"] is True and entry.data["reason"] == "hotfix for a typo"
    assert Ledger(db).verify().ok


def test_production_moves_only_by_promotion_and_canary_aliases_only_by_rollouts(
    db: Database, registry: PromptRegistry
) -> None:
    promotions = PromptPromotions(db)
    with pytest.raises(InvalidInput, match="keel prompt promote sales-card --version 2"):
        promotions.set_alias("sales-card", "production", 2, actor="alice")
    with pytest.raises(InvalidInput, match="moved by rollouts only"):
        promotions.set_alias("sales-card", "production-canary", 2, actor="alice")
    change = promotions.set_alias("sales-card", "staging", 2, actor="alice", reason="try it")
    assert (change.from_version, change.to_version) == (None, 2)
    assert registry.aliases("sales-card") == {"production": 1, "staging": 2}
    with pytest.raises(NotFound):
        promotions.set_alias("sales-card", "staging", 9, actor="alice")


def test_rollback_walks_back_like_a_stack_not_a_toggle(
    db: Database, registry: PromptRegistry
) -> None:
    promotions = PromptPromotions(db)
    promotions.promote(EVIDENCE, 2, actor="a", force=True, reason="r")
    promotions.promote(EVIDENCE, 3, actor="a", force=True, reason="r")
    assert promotions.rollback_target("sales-card", "production") == (3, 2)
    first = promotions.rollback("sales-card", actor="bob", reason="v3 confuses buyers")
    assert (first.from_version, first.to_version, first.action) == (3, 2, "rollback")
    second = promotions.rollback("sales-card", actor="bob", reason="v2 too")
    assert (second.from_version, second.to_version) == (2, 1)
    with pytest.raises(Conflict, match="no earlier version"):
        promotions.rollback("sales-card", actor="bob", reason="again")
    assert registry.aliases("sales-card")["production"] == 1
    reasons = [e.data["action"] for e in reversed(Ledger(db).entries(kind="prompt_promotion"))]
    assert reasons == ["force_promote", "force_promote", "rollback", "rollback"]
    with pytest.raises(InvalidInput):
        promotions.rollback("sales-card", actor="bob", reason="")


async def test_promoting_the_candidate_of_a_rollout_ends_it_promoted(
    db: Database, registry: PromptRegistry
) -> None:
    promotions = PromptPromotions(db)
    await stored_report(db)
    rollout = promotions.start_rollout(EVIDENCE, 2, percent=10, actor="alice")
    assert rollout.report_id is not None and rollout.baseline_version == 1
    with pytest.raises(Conflict, match="already has an active rollout"):
        promotions.start_rollout(EVIDENCE, 3, percent=5, actor="alice", force=True, reason="x")
    promotions.promote(EVIDENCE, 2, actor="alice")
    ended = promotions.rollouts.get(rollout.id)
    assert ended.status == "promoted" and ended.ended_by == "alice"
    assert registry.aliases("sales-card")["production-canary"] == 2


def test_a_rollout_needs_a_pass_report_or_a_forced_reason(
    db: Database, registry: PromptRegistry
) -> None:
    promotions = PromptPromotions(db)
    with pytest.raises(Conflict, match="no PASS report for sales-card v3 vs v1"):
        promotions.start_rollout(EVIDENCE, 3, percent=10, actor="alice")
    with pytest.raises(InvalidInput, match="100 % is a promotion"):
        promotions.start_rollout(EVIDENCE, 3, percent=100, actor="a", force=True, reason="r")
    with pytest.raises(InvalidInput, match="--shadow"):
        promotions.start_rollout(EVIDENCE, 3, percent=0, actor="a", force=True, reason="r")
    rollout = promotions.start_rollout(
        EVIDENCE, 3, percent=0, shadow=True, thresholds=RolloutThresholds(min_runs=5),
        actor="alice", force=True, reason="shadow only",
    )  # fmt: skip
    assert rollout.thresholds.min_runs == 5 and rollout.shadow
    stopped = promotions.stop_rollout("sales-card", actor="bob", reason="enough")
    assert stopped.status == "stopped" and stopped.reason == "enough"
    assert registry.aliases("sales-card")["production-canary"] == 1
    kinds = [e.data["action"] for e in reversed(Ledger(db).entries(kind="prompt_rollout"))]
    assert kinds == ["rollout_start", "rollout_stop"]
