"""`keel.client.Client` against a real server (uvicorn, executing fabric) on SQLite and
PostgreSQL, through a proxy that kills connections: conversations, streamed turns that
survive a killed connection, runs, approvals, agents, feedback, typed errors, retries."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest

from keel.client import (
    APIConnectionError,
    AuthenticationError,
    Client,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    RunEvent,
    ServerError,
)
from keel.fabric.service import Fabric
from keel.store.database import Database
from keel.store.tables import Turn
from tests.client.conftest import KeelServer, keel_server, tight_reads

QUESTION = {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"}
FAST = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.2)


def client(keel: KeelServer, **kwargs: Any) -> Client:
    kwargs.setdefault("api_key", keel.key())
    kwargs.setdefault("retry", FAST)
    return Client(keel.url, **kwargs)


def turn_count(db: Database, conversation_id: str) -> int:
    from sqlalchemy import func, select

    with db.transaction() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(Turn)
                .where(Turn.conversation_id == conversation_id)
            )
            or 0
        )


def test_a_conversation_from_opening_to_feedback_and_deletion(keel: KeelServer) -> None:
    with client(keel) as k:
        conversation = k.create_conversation("rune", {"project": "p-1"})
        with k.stream_turn(conversation.id, QUESTION) as stream:
            assert stream.turn_id is not None and stream.run_id is not None
            events = list(stream)
        assert events[-1].type == "run.succeeded" and events[-1].terminal
        with (
            k.events(turn_id=stream.turn_id) as again,
            k.events(run_id=stream.run_id, after=3) as tail,
        ):
            assert list(again) == events and list(tail) == events[3:]
        with pytest.raises(ValueError):
            k.events()
        answer = next(e for e in events if e.type == "output").data["text"]
        turns = k.list_turns(conversation.id)
        assert [t.id for t in turns] == [stream.turn_id]
        assert turns[0].text == answer and turns[0].status == "succeeded"
        assert k.get_conversation(conversation.id).title == QUESTION["question"]
        feedback = k.give_feedback(turns[0].id, "up", "spot on")
        assert k.get_feedback(turns[0].id) == feedback
        queued = k.submit_turn(conversation.id, {"question": "And in Malmö?"})
        assert queued.status in ("queued", "running")
        assert k.wait_turn(queued.id, timeout=30).status == "succeeded"
        k.delete_conversation(conversation.id)
        with pytest.raises(NotFoundError) as missing:
            k.get_conversation(conversation.id)
        assert missing.value.problem.code == "not_found" and missing.value.status == 404


def test_listing_pages_through_every_conversation(keel: KeelServer) -> None:
    with client(keel) as k:
        created = [k.create_conversation("rune").id for _ in range(5)]
        assert [c.id for c in k.list_conversations(page_size=2)] == list(reversed(created))


def test_a_stream_killed_mid_run_resumes_with_every_event_exactly_once(keel: KeelServer) -> None:
    """The proxy kills the connection while the run waits for approval; the stream
    reconnects with Last-Event-ID and continues once the run is approved."""
    assert keel.fabric is not None
    with client(keel) as k:
        conversation = k.create_conversation("payments")
        received: list[RunEvent] = []
        with k.stream_turn(conversation.id, {"question": "pay invoice 42"}) as stream:
            for event in stream:
                received.append(event)
                if event.type == "run.waiting_approval":
                    keel.proxy.cut()
                    (approval,) = k.list_approvals(status="pending", run_id=event.run_id)
                    k.approve(approval.id, "ok")
        assert stream.reconnects >= 1
        stored = keel.fabric.events("acme", received[0].run_id)
        assert [e.seq for e in received] == [e.seq for e in stored]
        assert [e.type for e in received] == [e.type for e in stored]
        assert received[-1].type == "run.succeeded"


def test_a_stream_cut_repeatedly_still_delivers_everything_in_order(keel: KeelServer) -> None:
    assert keel.fabric is not None
    with client(keel) as k:
        conversation = k.create_conversation("rune")
        received: list[RunEvent] = []
        with k.stream_turn(conversation.id, QUESTION) as stream:
            for event in stream:
                received.append(event)
                keel.proxy.cut()  # after every single event
        stored = keel.fabric.events("acme", received[0].run_id)
        assert [e.seq for e in received] == [e.seq for e in stored]
        # events that arrived in one read before a cut need no reconnect of their own
        assert 1 <= stream.reconnects <= len(stored) - 1


def test_a_lost_response_is_retried_with_the_same_key_and_runs_once(keel: KeelServer) -> None:
    """The request reaches the server, the connection dies before the answer: the client
    retries with the same Idempotency-Key and the server replays instead of running twice."""

    def lose_next_response() -> None:
        keel.proxy.cut()  # no pooled connection survives: the next request opens a new one
        keel.proxy.lose_responses = 1

    with client(keel) as k:
        conversation = k.create_conversation("rune")
        lose_next_response()
        turn = k.submit_turn(conversation.id, QUESTION)
        assert keel.proxy.lose_responses == 0
        assert turn_count(keel.db, conversation.id) == 1
        assert k.list_turns(conversation.id)[0].id == turn.id
        lose_next_response()
        with k.stream_turn(conversation.id, {"question": "And in Malmö?"}) as stream:
            events = list(stream)
        assert keel.proxy.lose_responses == 0
        assert events[0].seq == 1 and events[-1].type == "run.succeeded"
        assert turn_count(keel.db, conversation.id) == 2
        lose_next_response()
        run = k.submit_run("sales-card", {"project_id": "P-1001", "role": "electrician"})
        assert keel.proxy.lose_responses == 0
        assert k.wait_run(run.id, timeout=30).status == "succeeded"
        assert len(keel.fabric.list_runs("acme", agent="sales-card")) == 1  # type: ignore[union-attr]


def test_runs_give_typed_output_and_can_be_followed_cancelled_and_redriven(
    keel: KeelServer,
) -> None:
    assert keel.fabric is not None
    from tests.fabric.probe import effects

    with client(keel) as k:
        card = k.submit_run(
            "sales-card", {"project_id": "P-1001", "role": "electrician"}, wait=True
        )
        assert card.terminal and card.status == "succeeded"
        assert set(card.data) >= {"headline", "key_facts", "suggested_next_step"}
        description = k.get_agent("sales-card")
        assert description.output_kind == "object" and "batch" in description.runners
        assert {a.name for a in k.list_agents()} >= {"rune", "sales-card", "payments"}

        slow = k.submit_run("slow", {"question": "hold"})
        with k.run_events(slow.id) as stream:
            for event in stream:
                if event.type == "tool.requested":
                    break
        cancelled = k.cancel_run(slow.id)
        assert cancelled.status == "cancelled" and cancelled.usage["requests"] == 1
        effects().set_switch(keel.fabric.settings.home, "release", "1")

        effects().set_switch(keel.fabric.settings.home, "broken", "always")
        failed = k.submit_run("flaky", {"question": "look it up"}, wait=True, timeout=30)
        assert failed.status == "failed"
        with pytest.raises(ConflictError):
            k.cancel_run(failed.id)
        effects().set_switch(keel.fabric.settings.home, "broken", None)
        assert k.redrive_run(failed.id).redrives == 1
        assert k.wait_run(failed.id, timeout=30).status == "succeeded"


def test_approvals_are_listed_and_decided(keel: KeelServer) -> None:
    with client(keel) as k:
        waiting = k.submit_run("payments", {"question": "pay invoice 9"}, wait=True)
        assert waiting.status == "waiting_approval" and not waiting.terminal
        (approval,) = k.list_approvals(status="pending", run_id=waiting.id)
        decided = k.reject(approval.id, "not this one")
        assert decided.status == "rejected" and decided.decided_by == "anna"
        assert k.get_approval(approval.id).note == "not this one"
        assert k.wait_run(waiting.id, timeout=30).status == "succeeded"


def test_errors_are_typed_and_carry_the_problem(keel: KeelServer) -> None:
    with client(keel) as k:
        conversation = k.create_conversation("rune")
        with pytest.raises(InvalidRequestError) as invalid:
            k.submit_turn(conversation.id, {"locale": "sv"})
        assert [e.field for e in invalid.value.errors] == ["body.input.question"]
        with pytest.raises(NotFoundError):
            k.get_run("run_nope")
        with pytest.raises(NotFoundError):
            k.stream_turn("conv_nope", QUESTION)
    with (
        Client(keel.url, api_key="keel_sk_wrong", retry=FAST) as k,
        pytest.raises(AuthenticationError) as unauthorized,
    ):
        k.list_agents()
    assert unauthorized.value.problem.code == "unauthorized"
    reader = keel.key(scopes=("conversations:read",))
    with (
        Client(keel.url, api_key=reader, retry=FAST) as k,
        pytest.raises(PermissionDeniedError) as forbidden,
    ):
        k.create_conversation("rune")
    assert "conversations:write" in (forbidden.value.problem.detail or "")


def test_429_is_retried_after_retry_after(fabric: Fabric, tmp_path: Any) -> None:
    with keel_server(fabric, fabric.db, tmp_path, rate_limiter=tight_reads()) as server:
        with Client(server.url, api_key=server.key(), retry=FAST) as k:
            k.list_agents()
            started = time.monotonic()
            k.list_agents()  # the bucket is empty: 429, Retry-After: 1
            assert time.monotonic() - started >= 0.9
        impatient = RetryPolicy(attempts=1)
        with Client(server.url, api_key=server.key(), retry=impatient) as k:
            with pytest.raises(RateLimitError) as limited:
                for _ in range(3):
                    k.list_agents()
            assert limited.value.retry_after is not None and limited.value.retry_after >= 1


def test_5xx_is_retried_with_one_key_then_raised(fabric: Fabric, tmp_path: Any) -> None:
    """A server without a runtime answers 503 to run submissions."""
    sent: list[httpx.Request] = []
    with keel_server(None, fabric.db, tmp_path) as server:
        http = httpx.Client(event_hooks={"request": [sent.append]})
        with (
            Client(server.url, api_key=server.key(), retry=FAST, http_client=http) as k,
            pytest.raises(ServerError) as unavailable,
        ):
            k.submit_run("rune", {"question": "q"})
        http.close()
    assert unavailable.value.status == 503 and unavailable.value.code == "unavailable"
    assert len(sent) == FAST.attempts
    keys = {r.headers["idempotency-key"] for r in sent}
    assert len(keys) == 1 and next(iter(keys)).startswith("keel-client-")


def test_an_unreachable_server_is_an_api_connection_error() -> None:
    with (
        socket_closed() as url,
        Client(url, api_key="k", retry=FAST) as k,
        pytest.raises(APIConnectionError),
    ):
        k.list_agents()


class socket_closed:
    """A URL nothing listens on."""

    def __enter__(self) -> str:
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        return None


def test_streams_in_threads_share_one_client(keel: KeelServer) -> None:
    """httpx clients are thread-safe; so is this one."""
    with client(keel) as k:
        conversations = [k.create_conversation("rune").id for _ in range(4)]
        finals: list[str] = []

        def run(conversation_id: str) -> None:
            with k.stream_turn(conversation_id, QUESTION) as stream:
                finals.append([e.type for e in stream][-1])

        threads = [threading.Thread(target=run, args=(c,)) for c in conversations]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert finals == ["run.succeeded"] * 4
