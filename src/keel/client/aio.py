"""`AsyncClient`: the asynchronous Keel client (httpx), the same operations as `Client`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from keel.client import calls
from keel.client._base import EVENT_STREAM, ListOf, Options, Page, key_for, parse
from keel.client.calls import Call
from keel.client.errors import APIConnectionError, error_for
from keel.client.models import (
    WAITING_EVENT,
    Agent,
    AgentDescription,
    Approval,
    Conversation,
    DoubleTexting,
    Feedback,
    Run,
    RunEvent,
    Turn,
)
from keel.client.retry import RetryPolicy, retry_after
from keel.client.sse import KEEP_ALIVE, Decoder, ServerSentEvent

T = TypeVar("T")


class AsyncClient:
    """The Keel API, asynchronously (see `Client` for the behaviour of each operation).

        async with AsyncClient("http://127.0.0.1:8000", api_key="keel_sk_…") as keel:
            conversation = await keel.create_conversation("rune")
            async for event in await keel.stream_turn(conversation.id, {"question": "…"}):
                ...

    Authenticate with `api_key` (a `keel_sk_…` key) or `token` (an OIDC JWT). Failed requests
    are retried per `retry` (connection errors, 429 honouring `Retry-After`, 5xx); every POST
    carries an `Idempotency-Key`, generated once per call and reused by its retries, so a
    retry never runs anything twice (pass `idempotency_key=` to control it across processes).
    Event streams resume after a dropped connection with `Last-Event-ID`, up to
    `max_reconnects` times in a row. Errors are `keel.client.errors` types.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        stream_timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_reconnects: int = 10,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._options = Options(
            base_url, api_key=api_key, token=token, timeout=timeout,
            stream_timeout=stream_timeout, retry=retry, max_reconnects=max_reconnects,
        )  # fmt: skip
        self._http = http_client or httpx.AsyncClient()
        self._owns_http = http_client is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- transport ---------------------------------------------------------------------------

    async def _send(
        self, call: Call, *, stream: bool = False, last_event_id: int = 0
    ) -> httpx.Response:
        """The response to CALL (status < 400), retried per the policy; errors raised."""
        policy = self._options.retry
        key = key_for(call)
        attempt = 0
        while True:
            attempt += 1
            request = self._options.request(
                self._http, call, key, stream=stream, last_event_id=last_event_id
            )
            try:
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt >= policy.attempts or not policy.can_retry(call.method, exc):
                    raise APIConnectionError(f"{call.method} {call.path}: {exc!r}") from exc
                await asyncio.sleep(policy.delay(attempt))
                continue
            if response.status_code < 400:
                return response
            body = await response.aread()
            await response.aclose()
            wait = retry_after(response)
            retry = response.status_code in policy.statuses and attempt < policy.attempts
            if retry and (wait is None or wait <= policy.max_retry_after):
                await asyncio.sleep(policy.delay(attempt, wait))
                continue
            raise error_for(response, body, wait)

    async def _call(self, call: Call, model: type[T] | Any) -> T:
        response = await self._send(call)
        return parse(model, response.content)  # type: ignore[no-any-return]

    async def _pages(self, page: Callable[[str | None], Call], model: Any) -> AsyncIterator[Any]:
        cursor: str | None = None
        while True:
            listed: Page[Any] = await self._call(page(cursor), Page[model])
            for item in listed.data:
                yield item
            if not listed.has_more or not listed.next_cursor:
                return
            cursor = listed.next_cursor

    # --- conversations and turns -------------------------------------------------------------

    async def create_conversation(
        self,
        agent: str,
        metadata: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Conversation:
        return await self._call(
            calls.create_conversation(agent, metadata, idempotency_key), Conversation
        )

    def list_conversations(self, *, page_size: int = 20) -> AsyncIterator[Conversation]:
        """Your conversations, newest first, fetching pages as you iterate."""
        return self._pages(lambda c: calls.list_conversations(page_size, c), Conversation)

    async def get_conversation(self, conversation_id: str) -> Conversation:
        return await self._call(calls.get_conversation(conversation_id), Conversation)

    async def delete_conversation(self, conversation_id: str) -> None:
        await self._send(calls.delete_conversation(conversation_id))

    async def list_turns(self, conversation_id: str) -> list[Turn]:
        """Every turn of the conversation, oldest first, with status and output."""
        return (await self._call(calls.list_turns(conversation_id), ListOf[Turn])).data

    async def submit_turn(
        self,
        conversation_id: str,
        run_input: dict[str, Any],
        *,
        double_texting: DoubleTexting | None = None,
        idempotency_key: str | None = None,
    ) -> Turn:
        """Queue a turn; returns it at once (follow it with `turn_events` or `wait_turn`)."""
        call = calls.submit_turn(conversation_id, run_input, double_texting, idempotency_key)
        return await self._call(call, Turn)

    async def stream_turn(
        self,
        conversation_id: str,
        run_input: dict[str, Any],
        *,
        double_texting: DoubleTexting | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncEventStream:
        """Submit a turn and stream its run's events (the stream resumes after a drop).
        Validation and auth errors are raised here, before any event."""
        call = calls.submit_turn(conversation_id, run_input, double_texting, idempotency_key)
        response = await self._send(call, stream=True)
        turn_id = response.headers.get("keel-turn-id")
        if turn_id is None:
            await response.aclose()
            raise APIConnectionError("the server did not answer with an event stream")
        return AsyncEventStream(
            self, calls.turn_events(turn_id), response,
            run_id=response.headers.get("keel-run-id"), turn_id=turn_id,
        )  # fmt: skip

    async def get_turn(self, turn_id: str) -> Turn:
        return await self._call(calls.get_turn(turn_id), Turn)

    def turn_events(self, turn_id: str, *, after: int = 0) -> AsyncEventStream:
        """The turn's events after seq AFTER, live until its run ends."""
        return AsyncEventStream(
            self, calls.turn_events(turn_id), None, after=after, turn_id=turn_id
        )

    async def wait_turn(self, turn_id: str, *, timeout: float | None = None) -> Turn:
        """The turn once its run has ended or waits for approval (see `wait_run`)."""
        turn = await self.get_turn(turn_id)
        if turn.run_id is not None:
            await self.wait_run(turn.run_id, timeout=timeout)
        return await self.get_turn(turn_id)

    async def cancel_turn(
        self, conversation_id: str, turn_id: str, *, idempotency_key: str | None = None
    ) -> Turn:
        """Cancel a turn: its partial answer and usage stay on it."""
        return await self._call(calls.cancel_turn(conversation_id, turn_id, idempotency_key), Turn)

    async def give_feedback(
        self, turn_id: str, rating: str, text: str = "", *, idempotency_key: str | None = None
    ) -> Feedback:
        """Thumbs `up` or `down` with optional text; giving it again updates it."""
        return await self._call(
            calls.give_feedback(turn_id, rating, text, idempotency_key), Feedback
        )

    async def get_feedback(self, turn_id: str) -> Feedback:
        return await self._call(calls.get_feedback(turn_id), Feedback)

    # --- runs --------------------------------------------------------------------------------

    async def submit_run(
        self,
        agent: str,
        run_input: dict[str, Any],
        *,
        wait: bool = False,
        timeout: float | None = None,
        prompt: str | None = None,
        priority: int = 5,
        lane: str = "interactive",
        deadline: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Run AGENT once. With WAIT the server holds the request until the run ends or
        needs approval (at most TIMEOUT, ≤ 120 s); check `run.terminal`."""
        call = calls.submit_run(
            agent, run_input, wait=wait, timeout=timeout, prompt=prompt, priority=priority,
            lane=lane, deadline=deadline, key=idempotency_key,
        )  # fmt: skip
        return await self._call(call, Run)

    async def get_run(self, run_id: str) -> Run:
        return await self._call(calls.get_run(run_id), Run)

    def run_events(self, run_id: str, *, after: int = 0) -> AsyncEventStream:
        """The run's events after seq AFTER, live until it ends."""
        return AsyncEventStream(self, calls.run_events(run_id), None, after=after, run_id=run_id)

    def events(
        self, *, turn_id: str | None = None, run_id: str | None = None, after: int = 0
    ) -> AsyncEventStream:
        """The events of a turn or of a run (give exactly one), resumable; see `AsyncEventStream`."""
        if (turn_id is None) == (run_id is None):
            raise ValueError("give turn_id or run_id")
        if turn_id is not None:
            return self.turn_events(turn_id, after=after)
        assert run_id is not None
        return self.run_events(run_id, after=after)

    async def wait_run(self, run_id: str, *, timeout: float | None = None) -> Run:
        """The run once it has ended or is waiting for approval (`TimeoutError` after TIMEOUT)."""
        return await asyncio.wait_for(self._settled(run_id), timeout)

    async def _settled(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run.terminal or run.status == "waiting_approval":
            return run
        async with self.run_events(run_id) as stream:
            async for event in stream:
                if event.terminal or event.type == WAITING_EVENT:
                    run = await self.get_run(run_id)
                    if run.terminal or run.status == "waiting_approval":
                        return run
        return await self.get_run(run_id)

    async def cancel_run(self, run_id: str, *, idempotency_key: str | None = None) -> Run:
        return await self._call(calls.cancel_run(run_id, idempotency_key), Run)

    async def redrive_run(self, run_id: str, *, idempotency_key: str | None = None) -> Run:
        """Re-run a failed or timed-out run from its failed step."""
        return await self._call(calls.redrive_run(run_id, idempotency_key), Run)

    # --- approvals and agents ----------------------------------------------------------------

    def list_approvals(
        self, *, status: str | None = None, run_id: str | None = None, page_size: int = 50
    ) -> AsyncIterator[Approval]:
        """Your tenant's approvals, newest first (`status="pending"` for the queue)."""
        return self._pages(lambda c: calls.list_approvals(status, run_id, page_size, c), Approval)

    async def get_approval(self, approval_id: str) -> Approval:
        return await self._call(calls.get_approval(approval_id), Approval)

    async def approve(
        self, approval_id: str, note: str = "", *, idempotency_key: str | None = None
    ) -> Approval:
        return await self._call(
            calls.decide(approval_id, "approve", note, idempotency_key), Approval
        )

    async def reject(
        self, approval_id: str, note: str = "", *, idempotency_key: str | None = None
    ) -> Approval:
        return await self._call(
            calls.decide(approval_id, "reject", note, idempotency_key), Approval
        )

    async def list_agents(self) -> list[Agent]:
        return (await self._call(calls.list_agents(), ListOf[Agent])).data

    async def get_agent(self, name: str) -> AgentDescription:
        """The agent's input and output JSON schemas, model, prompt version, tools."""
        return await self._call(calls.get_agent(name), AgentDescription)


class AsyncEventStream:
    """A run's events as they happen; iterate it (once). After a dropped connection it
    reconnects with `Last-Event-ID`, so every event arrives exactly once, in order; iteration
    ends when the server closes the stream after the run's terminal event (a run re-driven
    meanwhile continues in the same iteration). `turn_id`/`run_id` are known from the start for a
    submitted turn. Use as an async context manager (or call `aclose`) when stopping early."""

    def __init__(
        self,
        client: AsyncClient,
        resume: Call,
        response: httpx.Response | None,
        *,
        after: int = 0,
        run_id: str | None = None,
        turn_id: str | None = None,
    ) -> None:
        self._client = client
        self._resume = resume
        self._response = response
        self.turn_id = turn_id
        self.run_id = run_id
        self.last_event_id = after
        self.reconnects = 0
        self._current: httpx.Response | None = None

    async def __aiter__(self) -> AsyncIterator[RunEvent]:
        async for item in self.items():
            if isinstance(item, RunEvent):
                yield item

    async def items(self) -> AsyncIterator[RunEvent | object]:
        """Events and `KEEP_ALIVE` markers (for callers that watch a clock)."""
        options = self._client._options
        failures = 0
        ended = False
        while True:
            response = self._response
            self._response = None
            if response is None:
                response = await self._client._send(
                    self._resume, stream=True, last_event_id=self.last_event_id
                )
            self._current = response
            try:
                if not response.headers.get("content-type", "").startswith(EVENT_STREAM):
                    raise APIConnectionError("the server did not answer with an event stream")
                decoder = Decoder()
                async for line in response.aiter_lines():
                    item = decoder.feed(line)
                    if item is KEEP_ALIVE:
                        yield KEEP_ALIVE
                    elif isinstance(item, ServerSentEvent):
                        event = RunEvent.model_validate_json(item.data)
                        if event.seq <= self.last_event_id:
                            continue
                        self.last_event_id, self.run_id, failures = event.seq, event.run_id, 0
                        ended = event.terminal
                        yield event
            except httpx.TransportError:
                pass  # dropped mid-stream: resume below
            finally:
                await response.aclose()
            if ended:
                return  # the server ends a stream after the terminal event
            failures += 1
            if failures > options.max_reconnects:
                raise APIConnectionError(
                    f"event stream dropped {failures} times in a row after event "
                    f"{self.last_event_id}"
                )
            self.reconnects += 1
            await asyncio.sleep(options.retry.delay(failures))

    async def aclose(self) -> None:
        for response in (self._response, self._current):
            if response is not None:
                await response.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
