"""Every API operation as a `Call` (method, path, query, body), built in one place and sent by
`Client` or `AsyncClient` — so the two share every path and parameter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from keel.client.models import DoubleTexting

MAX_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class Call:
    """One request. `key` is the caller's Idempotency-Key for a POST (None: generate one)."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    key: str | None = None


def _id(value: str) -> str:
    return quote(value, safe="")


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- conversations and turns -----------------------------------------------------------------


def create_conversation(agent: str, metadata: dict[str, Any] | None, key: str | None) -> Call:
    return Call(
        "POST", "/v1/conversations", json={"agent": agent, "metadata": metadata or {}}, key=key
    )


def list_conversations(limit: int, cursor: str | None) -> Call:
    return Call("GET", "/v1/conversations", params=_drop_none({"limit": limit, "cursor": cursor}))


def get_conversation(conversation_id: str) -> Call:
    return Call("GET", f"/v1/conversations/{_id(conversation_id)}")


def delete_conversation(conversation_id: str) -> Call:
    return Call("DELETE", f"/v1/conversations/{_id(conversation_id)}")


def list_turns(conversation_id: str) -> Call:
    return Call("GET", f"/v1/conversations/{_id(conversation_id)}/turns")


def submit_turn(
    conversation_id: str,
    run_input: dict[str, Any],
    double_texting: DoubleTexting | None,
    key: str | None,
) -> Call:
    body = _drop_none({"input": run_input, "double_texting": double_texting})
    return Call("POST", f"/v1/conversations/{_id(conversation_id)}/turns", json=body, key=key)


def get_turn(turn_id: str) -> Call:
    return Call("GET", f"/v1/turns/{_id(turn_id)}")


def turn_events(turn_id: str) -> Call:
    return Call("GET", f"/v1/turns/{_id(turn_id)}/events")


def cancel_turn(conversation_id: str, turn_id: str, key: str | None) -> Call:
    path = f"/v1/conversations/{_id(conversation_id)}/turns/{_id(turn_id)}/cancel"
    return Call("POST", path, key=key)


def give_feedback(turn_id: str, rating: str, text: str, key: str | None) -> Call:
    return Call(
        "POST", f"/v1/turns/{_id(turn_id)}/feedback", json={"rating": rating, "text": text}, key=key
    )


def get_feedback(turn_id: str) -> Call:
    return Call("GET", f"/v1/turns/{_id(turn_id)}/feedback")


# --- runs ------------------------------------------------------------------------------------


def submit_run(
    agent: str,
    run_input: dict[str, Any],
    *,
    wait: bool,
    timeout: float | None,
    prompt: str | None,
    priority: int,
    lane: str,
    deadline: datetime | None,
    key: str | None,
) -> Call:
    body = _drop_none(
        {
            "input": run_input,
            "prompt": prompt,
            "priority": priority,
            "lane": lane,
            "deadline": deadline.isoformat() if deadline else None,
        }
    )
    params: dict[str, Any] = {}
    if wait:
        params = {"wait": "true", "timeout": min(timeout or 30.0, MAX_WAIT_SECONDS)}
    return Call("POST", f"/v1/agents/{_id(agent)}/runs", params=params or None, json=body, key=key)


def get_run(run_id: str) -> Call:
    return Call("GET", f"/v1/runs/{_id(run_id)}")


def run_events(run_id: str) -> Call:
    return Call("GET", f"/v1/runs/{_id(run_id)}/events")


def cancel_run(run_id: str, key: str | None) -> Call:
    return Call("POST", f"/v1/runs/{_id(run_id)}/cancel", key=key)


def redrive_run(run_id: str, key: str | None) -> Call:
    return Call("POST", f"/v1/runs/{_id(run_id)}/redrive", key=key)


# --- approvals and agents --------------------------------------------------------------------


def list_approvals(status: str | None, run_id: str | None, limit: int, cursor: str | None) -> Call:
    params = _drop_none({"status": status, "run_id": run_id, "limit": limit, "cursor": cursor})
    return Call("GET", "/v1/approvals", params=params)


def get_approval(approval_id: str) -> Call:
    return Call("GET", f"/v1/approvals/{_id(approval_id)}")


def decide(approval_id: str, decision: str, note: str, key: str | None) -> Call:
    return Call(
        "POST", f"/v1/approvals/{_id(approval_id)}/{decision}", json={"note": note}, key=key
    )


def list_agents() -> Call:
    return Call("GET", "/v1/agents")


def get_agent(name: str) -> Call:
    return Call("GET", f"/v1/agents/{_id(name)}")
