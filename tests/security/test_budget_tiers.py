"""Budget tiers switch at exactly 75 % and 90 %; above 90 % a run is stopped before its next
model request and says why — in its error (the API view) and in its events."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from keel.control.budgets import Budgets, Tier, share, tier_for
from keel.identity.principal import Principal
from keel.store.tables import UsageRecord
from keel.store.types import utcnow
from tests.control.harness import SCRIPTS, SEEN, Gated, answer, calls, ran, steps

ALICE = Principal(tenant_id="t1", user_id="alice", roles=("sales",))


def test_the_tiers_switch_at_exactly_75_and_90_percent() -> None:
    assert tier_for(Decimal("74.9999999")) is Tier.ALLOW
    assert tier_for(Decimal(75)) is Tier.THROTTLE
    assert tier_for(Decimal(90)) is Tier.THROTTLE
    assert tier_for(Decimal("90.0000001")) is Tier.BLOCK
    assert tier_for(share(Decimal(749), Decimal(1000))) is Tier.ALLOW
    assert tier_for(share(Decimal(750), Decimal(1000))) is Tier.THROTTLE
    assert tier_for(share(Decimal(900), Decimal(1000))) is Tier.THROTTLE
    assert tier_for(share(Decimal(901), Decimal(1000))) is Tier.BLOCK
    # money has no rounding slack either: 9.000001 of 10 USD is over 90 %
    assert tier_for(share(Decimal("9.000001"), Decimal(10))) is Tier.BLOCK


@given(used=st.integers(min_value=0, max_value=10**9), limit=st.integers(1, 10**9))
def test_the_tier_agrees_with_integer_arithmetic(used: int, limit: int) -> None:
    expected = (
        Tier.BLOCK if 100 * used > 90 * limit
        else Tier.THROTTLE if 100 * used >= 75 * limit
        else Tier.ALLOW
    )  # fmt: skip
    assert tier_for(share(Decimal(used), Decimal(limit))) is expected


def _usage(gated: Gated, tenant: str, tokens: int, usd: float = 0.0, run_id: str = "prior") -> None:
    with gated.db.transaction() as s:
        s.add(
            UsageRecord(
                run_id=run_id, key=f"k{utcnow().timestamp()}{tokens}", tenant_id=tenant,
                user_id="u", agent="clerk", model="script:default", input_tokens=tokens,
                output_tokens=0, cost_usd=usd, created_at=utcnow(),
            )
        )  # fmt: skip


def test_the_state_reads_usage_against_each_budget(gated: Gated) -> None:
    budgets: Budgets = gated.plane.budgets
    budgets.set_limit("t1", monthly_tokens=1000, monthly_usd=Decimal(10), actor="ops")
    _usage(gated, "t1", 749)
    assert budgets.state("t1", "clerk", None).tier is Tier.ALLOW
    assert budgets.state("t1", "clerk", None, tokens=1).tier is Tier.THROTTLE  # projected 750
    _usage(gated, "t1", 151)
    state = budgets.state("t1", "clerk", None)
    assert state.tier is Tier.THROTTLE and state.remaining_pct == 10
    _usage(gated, "t1", 1)
    state = budgets.state("t1", "clerk", None)
    assert state.tier is Tier.BLOCK and state.remaining_pct == 9
    assert "tenant t1 monthly token budget at 90.1%" in state.reason()
    # another tenant's spend never counts
    assert budgets.state("t2", "clerk", None).tier is Tier.ALLOW
    # the money limit binds on its own
    budgets.set_limit("t2", monthly_usd=Decimal(10), actor="ops")
    _usage(gated, "t2", 0, usd=9.5)
    assert budgets.state("t2", "clerk", None).tier is Tier.BLOCK
    # a run budget counts only that run's usage
    _usage(gated, "t2", 95_000, run_id="run_x")
    line = next(ln for ln in budgets.state("t2", "clerk", "run_x").lines if ln.scope == "run")
    assert line.tier is Tier.BLOCK and line.limit == 100_000  # clerk's agent.yaml run_tokens


async def test_a_run_over_its_tenants_budget_is_blocked_and_says_why(gated: Gated) -> None:
    gated.plane.budgets.set_limit("t1", monthly_tokens=100_000, actor="ops")
    _usage(gated, "t1", 95_000)
    SCRIPTS["default"] = steps(calls(("read_records", {"query": "x"})), answer("ok"))
    view = gated.fabric.submit(ALICE, "clerk", {"question": "anything"})
    done = await gated.fabric.wait("t1", view.id, timeout=30)
    assert done.status == "failed"
    assert done.error is not None and done.error["type"] == "BudgetExceeded"
    assert "tenant t1 monthly token budget at 96" in done.error["message"]
    assert "blocked above 90%" in done.error["message"]
    events = gated.fabric.events("t1", view.id)
    [budget] = [e.data for e in events if e.type == "budget"]
    assert budget["tier"] == "block" and budget["stage"] == "model_request"
    [failed] = [e.data for e in events if e.type == "run.failed"]
    assert failed["error"]["type"] == "BudgetExceeded"
    assert SEEN == [] and ran("read_records") == []  # nothing was spent
    assert gated.plane.ledger.entries(tenant_id="t1", kind="budget")[0].data["tier"] == "block"


async def test_a_throttled_run_goes_on_and_says_so(gated: Gated) -> None:
    gated.plane.budgets.set_limit("t1", monthly_tokens=100_000, actor="ops")
    _usage(gated, "t1", 80_000)
    SCRIPTS["default"] = steps(answer("ok"))
    view = gated.fabric.submit(ALICE, "clerk", {"question": "anything"})
    done = await gated.fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded", done.error
    events = gated.fabric.events("t1", view.id)
    [budget] = [e.data for e in events if e.type == "budget"]
    assert budget["tier"] == "throttle" and budget["remaining_pct"] in (18, 19)
    assert "tenant t1 monthly token budget at 8" in budget["reason"]
