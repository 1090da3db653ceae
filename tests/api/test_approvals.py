"""Approvals over an executing fabric, on SQLite and PostgreSQL: listing (paginated, by
status and run), deciding as the caller, conflicts, auth and tenant scoping."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.api.conftest import Api, assert_problem, field_names


async def waiting_run(api: Api, question: str, tenant: str = "acme", user: str = "anna") -> str:
    assert api.fabric is not None
    response = await api.client.post(
        "/v1/agents/payments/runs?wait=true",
        json={"input": {"question": question}},
        headers=api.headers(tenant, user),
    )
    assert response.status_code == 202 and response.json()["status"] == "waiting_approval"
    run_id: str = response.json()["id"]
    return run_id


async def pending_for(api: Api, run_id: str) -> dict[str, Any]:
    page = await api.client.get(
        f"/v1/approvals?status=pending&run_id={run_id}", headers=api.headers()
    )
    (approval,) = page.json()["data"]
    assert approval["status"] == "pending" and approval["tool"] == "pay_invoice"
    result: dict[str, Any] = approval
    return result


async def test_approving_records_the_caller_and_resumes_the_run(live: Api) -> None:
    assert live.fabric is not None
    run_id = await waiting_run(live, "pay invoice 42")
    approval = await pending_for(live, run_id)
    assert approval["args"] == {"question": "pay invoice 42"} and approval["requested_by"] == "anna"
    approver = live.headers("acme", "olle", ("approvals:read", "approvals:write"))
    response = await live.client.post(
        f"/v1/approvals/{approval['id']}/approve", json={"note": "looks right"}, headers=approver
    )
    assert response.status_code == 200
    decided = response.json()
    assert decided["status"] == "approved" and decided["decided_by"] == "olle"
    assert decided["note"] == "looks right" and decided["decided_at"] is not None
    done = await live.fabric.wait("acme", run_id, timeout=30)
    assert done.status == "succeeded"
    got = await live.client.get(f"/v1/approvals/{approval['id']}", headers=approver)
    assert got.json()["status"] == "approved"
    twice = await live.client.post(f"/v1/approvals/{approval['id']}/reject", headers=approver)
    assert "already approved" in assert_problem(twice, 409, "conflict")["detail"]


async def test_rejecting_tells_the_model_and_the_run_still_ends(live: Api) -> None:
    assert live.fabric is not None
    run_id = await waiting_run(live, "pay invoice 9")
    approval = await pending_for(live, run_id)
    response = await live.client.post(
        f"/v1/approvals/{approval['id']}/reject", headers=live.headers()
    )
    assert response.json()["status"] == "rejected" and response.json()["decided_by"] == "anna"
    done = await live.fabric.wait("acme", run_id, timeout=30)
    assert done.status == "succeeded"


async def test_approvals_list_newest_first_in_pages_filtered_by_status(live: Api) -> None:
    runs = [await waiting_run(live, f"pay invoice {i}") for i in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/approvals?status=pending&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await live.client.get(url, headers=live.headers())).json()
        seen += [a["run_id"] for a in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == list(reversed(runs))
    first = await pending_for(live, runs[0])
    await live.client.post(f"/v1/approvals/{first['id']}/approve", headers=live.headers())
    approved = await live.client.get("/v1/approvals?status=approved", headers=live.headers())
    assert [a["id"] for a in approved.json()["data"]] == [first["id"]]
    bad = await live.client.get("/v1/approvals?status=maybe", headers=live.headers())
    assert_problem(bad, 422)
    assert field_names(bad) == ["query.status"]
    tampered = await live.client.get("/v1/approvals?cursor=abc", headers=live.headers())
    assert field_names(tampered) == ["query.cursor"]


async def test_concurrent_decisions_decide_once(live: Api) -> None:
    run_id = await waiting_run(live, "pay invoice 5")
    approval = await pending_for(live, run_id)
    url = f"/v1/approvals/{approval['id']}"
    responses = await asyncio.gather(
        *[
            live.client.post(f"{url}/{'approve' if i % 2 else 'reject'}", headers=live.headers())
            for i in range(6)
        ]
    )
    assert sorted(r.status_code for r in responses) == [200] + [409] * 5


async def test_approval_endpoints_need_credentials_and_the_approvals_scopes(live: Api) -> None:
    run_id = await waiting_run(live, "pay invoice 1")
    approval = await pending_for(live, run_id)
    reader = live.headers(scopes=("approvals:read",))
    writer = live.headers(scopes=("approvals:write",))
    for action in ("approve", "reject"):
        url = f"/v1/approvals/{approval['id']}/{action}"
        assert_problem(await live.client.post(url), 401)
        response = await live.client.post(url, headers=reader)
        assert "approvals:write" in assert_problem(response, 403)["detail"]
    for url in ("/v1/approvals", f"/v1/approvals/{approval['id']}"):
        assert_problem(await live.client.get(url), 401)
        response = await live.client.get(url, headers=writer)
        assert "approvals:read" in assert_problem(response, 403)["detail"]
    assert (await live.client.get("/v1/approvals", headers=reader)).status_code == 200


async def test_unknown_approvals_are_404_and_notes_are_bounded(live: Api) -> None:
    for method, url in (
        ("GET", "/v1/approvals/apr_nope"),
        ("POST", "/v1/approvals/apr_nope/approve"),
        ("POST", "/v1/approvals/apr_nope/reject"),
    ):
        assert_problem(await live.client.request(method, url, headers=live.headers()), 404)
    run_id = await waiting_run(live, "pay invoice 3")
    approval = await pending_for(live, run_id)
    long_note = await live.client.post(
        f"/v1/approvals/{approval['id']}/approve",
        json={"note": "x" * 2001},
        headers=live.headers(),
    )
    assert field_names(long_note) == ["body.note"]
