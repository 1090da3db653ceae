"""Idempotency-Key for POST endpoints (IETF httpapi idempotency-key draft semantics).

- The first request with a key *claims* it: one INSERT, made unique per (tenant, user,
  key) by the database, so exactly one of any number of concurrent requests wins on
  SQLite and PostgreSQL alike, across API processes.
- Its response (status, the headers that matter, body) is stored for `ttl`; a later
  request with the same key and the same fingerprint (sha256 of method, path, query and
  canonical JSON body) gets that response again, marked `Idempotent-Replayed: true`.
- Same key, different fingerprint: 422 `idempotency_mismatch`.
- A duplicate arriving while the first is still in flight *waits* (bounded by
  `wait_seconds`) and then replays — 20 concurrent submissions yield one effect and 20
  identical responses. Past the bound it gets 409, as the draft prescribes.
- A handler that raises, or answers 5xx, releases the claim: the client may retry.
- A claim in flight longer than `lease_seconds` is presumed dead (its process crashed)
  and the next request with the key takes it over.
- The handler finds its claim on `request.state.idempotency_claim`; `effect_key(request)`
  derives from it the key to hand the layer below (a run's idempotency key), so a takeover
  after a crash finds the effect the crashed request created, and a key reused after it
  expired creates a new one.
- Streaming endpoints store a replay *marker* instead of a body: set
  `request.state.idempotency_replay = EventReplay(resource_id=run_id)` before returning the
  stream, and install an `EventReplayer` as `app.state.event_replayer`; a replay then asks
  it to re-send the resource's stored events.

Only responses the handler returned are stored; exceptions (401, 403, 404, 422, 429, …)
are not, so a retry after fixing the cause is evaluated afresh.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

import anyio
import anyio.to_thread
from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from keel.errors import Conflict, IdempotencyMismatch, InvalidInput
from keel.ids import new_id
from keel.store.database import Database
from keel.store.tables import IdempotencyRecord
from keel.store.types import utcnow

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
_STORED_HEADERS = frozenset(
    {
        "content-type",
        "location",
        "etag",
        "last-modified",
        "preference-applied",
        "keel-turn-id",
        "keel-run-id",
    }
)


@dataclass(frozen=True)
class IdempotencyScope:
    """Whose key this is: keys never collide across tenants or users."""

    tenant_id: str
    user_id: str
    key: str


@dataclass(frozen=True)
class StoredResponse:
    """A response to replay. `kind="events"` means: re-send the events of `resource_id`."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    kind: Literal["body", "events"] = "body"
    resource_id: str | None = None


@dataclass(frozen=True)
class Claim:
    """Proof of winning a key; `claimed_at` fences a stale owner after a takeover."""

    scope: IdempotencyScope
    record_id: str
    claimed_at: datetime


@dataclass(frozen=True)
class InFlight:
    """Someone else holds the key and has not finished."""


@dataclass(frozen=True)
class EventReplay:
    """Set on `request.state.idempotency_replay` by a streaming endpoint."""

    resource_id: str


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """sha256 over method, path, sorted query and the body (canonical JSON when it parses)."""
    canonical: bytes = body
    if body:
        try:
            canonical = json.dumps(
                json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode()
        except (ValueError, UnicodeDecodeError):
            canonical = body
    sorted_query = "&".join(sorted(query.split("&"))) if query else ""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), sorted_query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _encode_body(body: bytes) -> tuple[str, str]:
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode("ascii"), "base64"


class IdempotencyStore:
    """The `idempotency_keys` table. Blocking; call from a worker thread on the request path."""

    def __init__(
        self,
        db: Database,
        *,
        ttl_seconds: float = 24 * 3600,
        lease_seconds: float = 300,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._db = db
        self._ttl = timedelta(seconds=ttl_seconds)
        self._lease = timedelta(seconds=lease_seconds)
        self._now = now

    def claim(self, scope: IdempotencyScope, fp: str) -> Claim | StoredResponse | InFlight:
        """Insert-first claim. Raises `IdempotencyMismatch` for a different request."""
        for _ in range(5):
            now = self._now()
            record_id = new_id("idem")
            try:
                with self._db.transaction() as s:
                    s.add(
                        IdempotencyRecord(
                            id=record_id,
                            tenant_id=scope.tenant_id,
                            user_id=scope.user_id,
                            key=scope.key,
                            fingerprint=fp,
                            status="in_flight",
                            created_at=now,
                            claimed_at=now,
                            expires_at=now + self._ttl,
                        )
                    )
                return Claim(scope, record_id, now)
            except IntegrityError:
                pass
            outcome = self._inspect_existing(scope, fp, now)
            if outcome is not None:
                return outcome
        raise Conflict("could not claim the Idempotency-Key; retry")

    def _inspect_existing(
        self, scope: IdempotencyScope, fp: str, now: datetime
    ) -> Claim | StoredResponse | InFlight | None:
        """What the existing row means; None when it vanished or expired (claim again)."""
        with self._db.transaction() as s:
            row = s.scalars(
                select(IdempotencyRecord).where(
                    IdempotencyRecord.tenant_id == scope.tenant_id,
                    IdempotencyRecord.user_id == scope.user_id,
                    IdempotencyRecord.key == scope.key,
                )
            ).first()
            if row is None:
                return None
            if row.expires_at <= now:
                s.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.id == row.id, IdempotencyRecord.expires_at <= now
                    )
                )
                return None
            if row.fingerprint != fp:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was used with a different request; "
                    "use a new key for a new request"
                )
            if row.status == "complete":
                return _stored(row)
            if row.claimed_at + self._lease > now:
                return InFlight()
            taken = s.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == row.id,
                    IdempotencyRecord.status == "in_flight",
                    IdempotencyRecord.claimed_at == row.claimed_at,
                )
                .values(claimed_at=now)
            )
            if getattr(taken, "rowcount", 0) == 1:
                log.warning("idempotency key %s: in-flight claim expired, taken over", row.id)
                return Claim(scope, row.id, now)
            return InFlight()

    def complete(self, claim: Claim, response: StoredResponse) -> bool:
        """Store the response; False if the claim was taken over meanwhile (then nothing)."""
        body, encoding = _encode_body(response.body)
        replay: dict[str, Any] = {"kind": response.kind, "encoding": encoding}
        if response.resource_id is not None:
            replay["resource_id"] = response.resource_id
        with self._db.transaction() as s:
            done = s.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == claim.record_id,
                    IdempotencyRecord.status == "in_flight",
                    IdempotencyRecord.claimed_at == claim.claimed_at,
                )
                .values(
                    status="complete",
                    response_status=response.status,
                    response_headers=dict(response.headers),
                    response_body=body,
                    replay=replay,
                )
            )
            return getattr(done, "rowcount", 0) == 1

    def release(self, claim: Claim) -> None:
        """Forget an unfinished claim so the client can retry."""
        with self._db.transaction() as s:
            s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.id == claim.record_id,
                    IdempotencyRecord.status == "in_flight",
                    IdempotencyRecord.claimed_at == claim.claimed_at,
                )
            )

    def purge_expired(self) -> int:
        """Delete every expired key (the sweep); returns how many."""
        with self._db.transaction() as s:
            result = s.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= self._now())
            )
            return int(getattr(result, "rowcount", 0) or 0)


def _stored(row: IdempotencyRecord) -> StoredResponse:
    replay = row.replay or {}
    raw = row.response_body or ""
    body = base64.b64decode(raw) if replay.get("encoding") == "base64" else raw.encode("utf-8")
    return StoredResponse(
        status=row.response_status or 200,
        headers={str(k): str(v) for k, v in (row.response_headers or {}).items()},
        body=body,
        kind="events" if replay.get("kind") == "events" else "body",
        resource_id=replay.get("resource_id"),
    )


class Idempotency:
    """Claim, wait and store around a handler. One per app; holds in-process wake-ups.

    A duplicate waiting on a request in *this* process is woken the moment it finishes;
    one waiting on another process polls the table with backoff (50 ms → 500 ms).
    """

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        wait_seconds: float = 30.0,
        sweep_interval_seconds: float = 3600.0,
    ) -> None:
        self.store = store
        self._wait = wait_seconds
        self._sweep_interval = sweep_interval_seconds
        self._last_sweep = time.monotonic()
        self._done: dict[IdempotencyScope, asyncio.Event] = {}

    async def begin(self, scope: IdempotencyScope, fp: str) -> Claim | StoredResponse:
        """A claim to run the handler under, or the stored response to replay.

        Raises `IdempotencyMismatch` (different request) or `Conflict` (still in flight
        after `wait_seconds`).
        """
        await self._maybe_sweep()
        deadline = time.monotonic() + self._wait
        poll = 0.05
        while True:
            outcome = await anyio.to_thread.run_sync(self.store.claim, scope, fp)
            if isinstance(outcome, Claim):
                self._done[scope] = asyncio.Event()
                return outcome
            if isinstance(outcome, StoredResponse):
                return outcome
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Conflict(
                    "a request with this Idempotency-Key is still in progress; retry later"
                )
            local = self._done.get(scope)
            try:
                if local is not None:
                    await asyncio.wait_for(local.wait(), timeout=min(remaining, 5.0))
                else:
                    await asyncio.sleep(min(remaining, poll))
                    poll = min(poll * 2, 0.5)
            except TimeoutError:
                pass

    async def complete(self, claim: Claim, response: StoredResponse) -> None:
        try:
            stored = await anyio.to_thread.run_sync(self.store.complete, claim, response)
            if not stored:
                log.warning("idempotency claim %s lost before completion", claim.record_id)
        finally:
            self._wake(claim.scope)

    async def release(self, claim: Claim) -> None:
        try:
            await anyio.to_thread.run_sync(self.store.release, claim)
        finally:
            self._wake(claim.scope)

    def _wake(self, scope: IdempotencyScope) -> None:
        event = self._done.pop(scope, None)
        if event is not None:
            event.set()

    async def _maybe_sweep(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < self._sweep_interval:
            return
        self._last_sweep = now
        purged = await anyio.to_thread.run_sync(self.store.purge_expired)
        if purged:
            log.info("purged %d expired idempotency keys", purged)


class EventReplayer(Protocol):
    """Rebuilds a streaming response from a resource's stored events (installed later)."""

    def __call__(self, request: Request, stored: StoredResponse) -> Awaitable[Response]: ...


PrincipalResolver = Callable[[Request], Awaitable[Any]]


def effect_key(request: Request) -> str | None:
    """The idempotency key for the effect this request creates, or None without a key.

    Derived from the claim's record id: the same across a takeover of a crashed claim (which
    keeps the record), new once the key expired and was claimed afresh."""
    claim = getattr(request.state, "idempotency_claim", None)
    return f"idem:{claim.record_id}" if isinstance(claim, Claim) else None


def _validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters",
            field=f"header.{HEADER}",
        )
    return key


async def _replay(request: Request, stored: StoredResponse) -> Response:
    if stored.kind == "events":
        replayer: EventReplayer | None = getattr(request.app.state, "event_replayer", None)
        if replayer is None:
            raise RuntimeError("a streaming replay was stored but no event_replayer is installed")
        response = await replayer(request, stored)
    else:
        response = Response(content=stored.body, status_code=stored.status)
        for name, value in stored.headers.items():
            response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _capture(request: Request, response: Response) -> StoredResponse | None:
    headers = {k: v for k, v in response.headers.items() if k.lower() in _STORED_HEADERS}
    marker = getattr(request.state, "idempotency_replay", None)
    if isinstance(marker, EventReplay):
        return StoredResponse(response.status_code, headers, b"", "events", marker.resource_id)
    body = getattr(response, "body", None)
    if not isinstance(body, bytes):
        log.warning("%s returned a streaming response without EventReplay", request.url.path)
        return None
    return StoredResponse(response.status_code, headers, body)


class IdempotentRoute(APIRoute):
    """An `APIRoute` honouring `Idempotency-Key` on POST/PUT/PATCH.

    Use as `APIRouter(route_class=IdempotentRoute)` or `route_class_override`. The app must
    provide `app.state.idempotency` (an `Idempotency`) and `app.state.resolve_principal`
    (the same resolver the auth dependency uses; it caches on `request.state`).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            raw_key = request.headers.get(HEADER)
            if raw_key is None or request.method not in ("POST", "PUT", "PATCH"):
                return await inner(request)
            key = _validate_key(raw_key)
            principal = await request.app.state.resolve_principal(request)
            body = await request.body()
            fp = fingerprint(request.method, request.url.path, request.url.query, body)
            idem: Idempotency = request.app.state.idempotency
            scope = IdempotencyScope(principal.tenant_id, principal.user_id, key)
            outcome = await idem.begin(scope, fp)
            if isinstance(outcome, StoredResponse):
                return await _replay(request, outcome)
            request.state.idempotency_claim = outcome
            try:
                response = await inner(request)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await idem.release(outcome)
                raise
            stored = _capture(request, response) if response.status_code < 500 else None
            if stored is None:
                await idem.release(outcome)
            else:
                await idem.complete(outcome, stored)
            return response

        return handler
