"""Human approval: a run suspends durably (no worker held), resumes on a decision, expires."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from keel.errors import Conflict, NotFound
from keel.fabric.events import EventType
from keel.fabric.service import Fabric
from keel.identity.principal import Principal
from keel.store.types import utcnow
from tests.fabric.probe import effects

PAY = {"question": "Pay invoice INV-1001 to Acme"}


async def _waiting(fabric: Fabric, principal: Principal) -> str:
    view = fabric.submit(principal, "payments", PAY)
    settled = await fabric.wait("t1", view.id, timeout=30)
    assert settled.status == "waiting_approval"
    return view.id


async def test_a_tool_that_needs_approval_suspends_the_run_without_holding_a_worker(
    fabric: Fabric, alice: Principal
) -> None:
    run_id = await _waiting(fabric, alice)
    # the segment's workflow has ended: nothing executes or waits in memory for the human
    assert fabric.engine.result(run_id) == "waiting_approval"
    [approval] = fabric.approvals("t1", status="pending")
    assert approval.tool == "pay_invoice" and approval.args == {"question": PAY["question"]}
    assert approval.requested_by == "alice" and approval.expires_at > utcnow() + timedelta(
        minutes=59
    )
    assert effects().rows(fabric.settings.home, "SELECT count(*) FROM effects") == [(0,)]


async def test_approving_resumes_the_run_and_the_tool_takes_effect_once(
    fabric: Fabric, alice: Principal
) -> None:
    run_id = await _waiting(fabric, alice)
    [approval] = fabric.approvals("t1", status="pending")
    fabric.approve("t1", approval.id, "bob", note="looks right")
    done = await fabric.wait("t1", run_id, timeout=30)
    assert done.status == "succeeded" and done.segment == 1
    assert effects().rows(fabric.settings.home, "SELECT run_id FROM effects") == [(run_id,)]
    types = [e.type for e in fabric.events("t1", run_id)]
    assert (
        types.index(EventType.APPROVAL_REQUESTED)
        < types.index(EventType.APPROVAL_RESOLVED)
        < types.index(EventType.TOOL_RESULT)
    )
    with pytest.raises(Conflict):
        fabric.approve("t1", approval.id, "bob")


async def test_rejecting_tells_the_model_and_the_tool_never_runs(
    fabric: Fabric, alice: Principal
) -> None:
    run_id = await _waiting(fabric, alice)
    [approval] = fabric.approvals("t1", status="pending")
    fabric.reject("t1", approval.id, "bob", note="wrong amount")
    done = await fabric.wait("t1", run_id, timeout=30)
    assert done.status == "succeeded"
    assert (
        done.output is not None
        and "rejected" in done.output["text"]
        and "wrong amount" in done.output["text"]
    )
    assert effects().rows(fabric.settings.home, "SELECT count(*) FROM attempts") == [(0,)]


async def test_an_expired_approval_counts_as_a_rejection(fabric: Fabric, alice: Principal) -> None:
    run_id = await _waiting(fabric, alice)
    assert fabric.expire_approvals(now=utcnow() + timedelta(hours=2)) == 1
    [approval] = fabric.approvals("t1", status=None)
    assert approval.status == "expired" and approval.decided_by == "system"
    done = await fabric.wait("t1", run_id, timeout=30)
    assert done.status == "succeeded" and "expired" in (done.output or {}).get("text", "")
    assert effects().rows(fabric.settings.home, "SELECT count(*) FROM attempts") == [(0,)]


async def test_another_tenant_cannot_see_or_decide_an_approval(
    fabric: Fabric, alice: Principal
) -> None:
    await _waiting(fabric, alice)
    [approval] = fabric.approvals("t1", status="pending")
    assert fabric.approvals("t2") == []
    with pytest.raises(NotFound):
        fabric.approve("t2", approval.id, "mallory")


async def test_cancelling_a_waiting_run_closes_its_approvals(
    fabric: Fabric, alice: Principal
) -> None:
    run_id = await _waiting(fabric, alice)
    fabric.cancel("t1", run_id, "alice")
    [approval] = fabric.approvals("t1", status=None)
    assert approval.status == "rejected" and approval.note == "run cancelled"
    with pytest.raises(Conflict):
        fabric.approve("t1", approval.id, "bob")


async def test_a_stale_segment_step_re_executed_after_a_crash_changes_nothing(
    fabric: Fabric, alice: Principal
) -> None:
    """A worker dies after `keel.suspend` committed but before DBOS recorded the step; a human
    approves before recovery (the run is queued in its next segment); the recovered workflow
    re-executes steps of the old segment. They must not touch the run."""
    run_id = await _waiting(fabric, alice)
    await asyncio.to_thread(fabric.engine.shutdown)  # no worker: the next segment stays queued
    [approval] = fabric.approvals("t1", status="pending")
    fabric.approve("t1", approval.id, "bob")
    queued = fabric.get("t1", run_id)
    assert (queued.status, queued.segment) == ("queued", 1)
    request = {"tool_call_id": approval.tool_call_id, "tool": approval.tool, "args": approval.args}
    fabric.activities.suspend(run_id, 0, [], [request])
    fabric.activities.succeed(run_id, 0, {"type": "text", "text": "stale"}, [])
    fabric.activities.end(run_id, 0, "failed", {"type": "X", "message": "stale", "step": "x"})
    after = fabric.get("t1", run_id)
    assert (after.status, after.segment, after.output, after.error) == ("queued", 1, None, None)
    assert [a.status for a in fabric.approvals("t1", status=None)] == ["approved"]
