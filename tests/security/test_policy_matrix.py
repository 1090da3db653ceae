"""The policy matrix: principals × tools × contexts against the decisions the deployment's
policies (tests/control/deployment/policies) and registry promise — including
REQUIRE_APPROVAL — evaluated by the gate, then end to end through the fabric for a
representative subset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from keel.control.gate import Gate, GateCall
from keel.identity.principal import Principal
from keel.ids import new_id
from keel.store.tables import Run, UsageRecord
from keel.store.types import utcnow
from tests.control.harness import SCRIPTS, Gated, answer, calls, ran, steps

PRINCIPALS = {
    "sales": Principal(tenant_id="t1", user_id="alice", roles=("sales",)),
    "admin": Principal(tenant_id="t1", user_id="adam", roles=("admin",)),
    "guest": Principal(tenant_id="big", user_id="gus", roles=()),  # enterprise tier
}
TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    "read": ("read_records", {"query": "acme"}),
    "delete": ("delete_records", {"record_id": "R-1"}),
    "pay_small": ("transfer_funds", {"amount": 10, "to_account": "X-1"}),
    "pay_big": ("transfer_funds", {"amount": 5000, "to_account": "X-1"}),
    "crm": ("crm_company", {"company_id": "C-001"}),
    "insights": ("enterprise_insights", {"topic": "q3"}),
}
CONTEXTS = ("day", "night", "throttled", "approved")
A, D, R = "ALLOW", "DENY", "REQUIRE_APPROVAL"
EXPECTED: dict[tuple[str, str], tuple[str, str, str, str]] = {
    # (principal, tool): (day, night, throttled, approved)
    ("sales", "read"): (A, A, A, A),
    ("admin", "read"): (A, A, A, A),
    ("guest", "read"): (A, A, A, A),
    ("sales", "delete"): (D, D, D, D),  # deletes-need-admin: no approval lifts it
    ("admin", "delete"): (A, D, A, A),  # high sensitivity: never at night
    ("guest", "delete"): (D, D, D, D),
    ("sales", "pay_small"): (A, A, R, A),  # 0.05 USD a call: approval while throttled
    ("admin", "pay_small"): (A, A, R, A),
    ("guest", "pay_small"): (A, A, R, A),
    ("sales", "pay_big"): (R, R, R, A),  # big-transfers-need-approval
    ("admin", "pay_big"): (R, R, R, A),
    ("guest", "pay_big"): (R, R, R, A),
    ("sales", "crm"): (A, A, A, A),  # 0.002 USD: below the throttle threshold
    ("admin", "crm"): (A, A, A, A),
    ("guest", "crm"): (D, D, D, D),  # crm-is-for-sales
    ("sales", "insights"): (D, D, D, D),  # enterprise tier only (registry)
    ("admin", "insights"): (D, D, D, D),
    ("guest", "insights"): (A, A, A, A),
}
DAY = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
NIGHT = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def _run_of(gated: Gated, principal: Principal) -> str:
    run_id = new_id("run")
    with gated.db.transaction() as s:
        s.add(
            Run(
                id=run_id, tenant_id=principal.tenant_id, user_id=principal.user_id,
                principal=principal.model_dump(mode="json"), agent="clerk", spec_version="v",
                model="script:default", input={}, status="running", created_at=utcnow(),
            )
        )  # fmt: skip
    return run_id


def _throttle(gated: Gated, tenant: str, scale: int = 1) -> None:
    """Put TENANT at 80 % of a monthly token budget (the throttle tier). SCALE leaves room
    for the model requests of a whole run (each is estimated at ~1,100 tokens)."""
    gated.plane.budgets.set_limit(tenant, monthly_tokens=1000 * scale, actor="test")
    with gated.db.transaction() as s:
        s.add(
            UsageRecord(
                run_id=f"prior-{tenant}", key="k", tenant_id=tenant, user_id="u", agent="clerk",
                model="script:default", input_tokens=500 * scale, output_tokens=300 * scale, cost_usd=0.0,
                created_at=utcnow(),
            )
        )  # fmt: skip


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_principal_tool_and_context_gets_the_expected_decision(
    gated: Gated, context: str
) -> None:
    gate = Gate(gated.plane)
    runs = {name: _run_of(gated, p) for name, p in PRINCIPALS.items()}
    if context == "throttled":
        for tenant in ("t1", "big"):
            _throttle(gated, tenant)
    now = NIGHT if context == "night" else DAY
    got: dict[tuple[str, str], str] = {}
    for who, tool_key in EXPECTED:
        principal = PRINCIPALS[who]
        tool, args = TOOLS[tool_key]
        call = GateCall(
            run_id=runs[who], tenant_id=principal.tenant_id, user_id=principal.user_id,
            agent="clerk", tool=tool, tool_call_id="c", args=args,
            approved=context == "approved",
        )  # fmt: skip
        got[(who, tool_key)] = gate.evaluate(call, now).decision.value
    want = {cell: row[CONTEXTS.index(context)] for cell, row in EXPECTED.items()}
    assert got == want


async def test_a_representative_subset_end_to_end_through_the_fabric(gated: Gated) -> None:
    cases = [
        ("sales", "delete", "succeeded", False),
        ("admin", "delete", "succeeded", True),
        ("sales", "pay_big", "waiting_approval", False),
        ("guest", "crm", "succeeded", False),
        ("guest", "insights", "succeeded", True),
        ("sales", "pay_small", "succeeded", True),
    ]
    for who, tool_key, status, executes in cases:
        tool, args = TOOLS[tool_key]
        before = len(ran(tool))
        SCRIPTS["default"] = steps(calls((tool, args)), answer("ok"))
        principal = PRINCIPALS[who]
        view = gated.fabric.submit(principal, "clerk", {"question": f"{who} {tool_key}"})
        done = await gated.fabric.wait(principal.tenant_id, view.id, timeout=30)
        assert done.status == status, (who, tool_key, done.error)
        assert (len(ran(tool)) > before) is executes, (who, tool_key)
        decisions = [
            e.data["decision"]
            for e in gated.fabric.events(principal.tenant_id, view.id)
            if e.type == "tool.decision"
        ]
        expected = EXPECTED[(who, tool_key)][0]
        assert decisions == [expected], (who, tool_key)
    # throttled: the small transfer now needs a human
    _throttle(gated, "t1", scale=100)
    tool, args = TOOLS["pay_small"]
    SCRIPTS["default"] = steps(calls((tool, args)), answer("ok"))
    view = gated.fabric.submit(PRINCIPALS["sales"], "clerk", {"question": "pay while throttled"})
    done = await gated.fabric.wait("t1", view.id, timeout=30)
    assert done.status == "waiting_approval"
    [approval] = gated.fabric.approvals("t1", run_id=view.id)
    assert "expensive-tools-need-approval-when-throttled" in approval.reason
