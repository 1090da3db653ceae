"""Turn latency through the whole stack: create a turn and stream it to completion.

For each backend (SQLite, PostgreSQL) a real uvicorn server runs the API with the fabric
executing runs in the same process (`keel up`'s shape), offline model. Clients (1, 10, 50
at once, each in its own conversation, turns one after another) POST a turn with
`Accept: text/event-stream` and read the stream to the terminal event; the latency is
from sending the request to receiving `run.succeeded`. Printed as p50/p95 and as a ratio to
calling the same agent directly in-process (Pydantic AI `agent.run` with the same offline
model, prompt and tools: no fabric, no database, no HTTP) at the same concurrency, and
broken down (medians) from the events' own timestamps: submit (request → stream headers:
turn, run and workflow created in one transaction), queue (run.queued → run.started),
run (durable execution, every step checkpointed) and deliver (run.succeeded written →
received by the client).

Then p95 of the non-LLM endpoints over HTTP (list conversations, get a conversation, post
feedback), one request at a time, against the 200 ms target.

Settings used (stated in the output): interactive lane concurrency 64 per worker and per
tenant, so 50 clients are not queued behind the default 16/8 — the point is the API's and
the fabric's overhead, not the queue's admission limit. Rate limits are set never to deny.

    .venv/bin/python -m bench.bench_api_turns [--samples 40] [--pg-url …|none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bench.scratch_pg import scratch_database
from keel.agents.builder import build_agent
from keel.agents.deps import RunDeps
from keel.api.app import create_app
from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.identity.keys import create_key
from keel.settings import RateLimitSetting, Settings
from keel.store.database import Database

TARGET_P95_MS = 200.0
LEVELS = (1, 10, 50)
AGENT = "rune"
QUESTIONS = [
    {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"},
    {"question": "Which school projects in Malmö start next year?", "locale": "sv"},
    {"question": "Who are the contacts at the builder of the Gothenburg office project?"},
    {"question": "List retail projects in Skåne in the tender stage.", "locale": "en"},
]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "agents"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), percentile(samples, 0.95)


# --- the server -------------------------------------------------------------------------------


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.ready.set()


@contextmanager
def serve(app: Any) -> Iterator[str]:
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not server.ready.wait(15):
        raise RuntimeError("uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(15)


def bench_settings(home: Path, url: str) -> Settings:
    unlimited = RateLimitSetting(capacity=1e9, refill_per_second=1e9)
    return Settings(  # type: ignore[call-arg]
        env="test",
        home=home,
        database_url=url,
        agents_dirs=[EXAMPLES],
        interactive_concurrency=64,
        tenant_concurrency=64,
        rate_limits=dict.fromkeys(("turns", "runs", "reads", "writes"), unlimited),
        _env_file=None,
    )


@dataclass
class Stack:
    base_url: str
    key: str
    fabric: Fabric


@contextmanager
def stack(url: str) -> Iterator[Stack]:
    with tempfile.TemporaryDirectory() as home:
        settings = bench_settings(Path(home), url)
        db = Database.from_settings(settings)
        db.upgrade()
        fabric = Fabric(settings, db, AgentCatalog.load(settings, db))
        fabric.start(execute=True)
        try:
            key = create_key(db, "bench", "anna").secret
            with serve(create_app(settings, db, fabric=fabric)) as base_url:
                yield Stack(base_url, key, fabric)
        finally:
            fabric.stop()
            db.dispose()


# --- create turn + stream to completion -------------------------------------------------------


@dataclass(frozen=True)
class TurnTiming:
    """One turn, in ms: the whole, and where it went (from the events' own timestamps)."""

    total: float  # request sent → run.succeeded received
    submit: float  # request sent → stream headers (turn + run + workflow created)
    queue: float  # run.queued → run.started (the lane's queue)
    run: float  # run.started → run.succeeded (durable execution: steps, events)
    deliver: float  # run.succeeded written → received by the client


async def one_turn(
    http: httpx.AsyncClient, conversation_id: str, question: dict[str, Any]
) -> TurnTiming:
    started = time.perf_counter()
    stamps: dict[str, datetime] = {}
    async with http.stream(
        "POST",
        f"/v1/conversations/{conversation_id}/turns",
        json={"input": question},
        headers={"Accept": "text/event-stream"},
    ) as response:
        headers_at = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(f"{response.status_code}: {(await response.aread())[:300]!r}")
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            kind = event["type"]
            stamps[kind] = datetime.fromisoformat(event["created_at"])
            if kind in ("run.failed", "run.cancelled", "run.timed_out", "run.blocked"):
                raise RuntimeError(f"turn ended {kind}: {event['data']}")
            if kind == "run.succeeded":
                done, done_wall = time.perf_counter(), datetime.now(UTC)
                break
        else:
            raise RuntimeError("stream ended without a terminal event")

    def span(a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() * 1000

    return TurnTiming(
        total=(done - started) * 1000,
        submit=(headers_at - started) * 1000,
        queue=span(stamps["run.queued"], stamps["run.started"]),
        run=span(stamps["run.started"], stamps["run.succeeded"]),
        deliver=span(stamps["run.succeeded"], done_wall),
    )


async def turns_at(base_url: str, key: str, clients: int, per_client: int) -> list[TurnTiming]:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=120, limits=limits
    ) as http:
        conversations = []
        for _ in range(clients):
            response = await http.post("/v1/conversations", json={"agent": AGENT})
            conversations.append(response.json()["id"])

        async def client(index: int) -> list[TurnTiming]:
            return [
                await one_turn(http, conversations[index], QUESTIONS[(index + t) % len(QUESTIONS)])
                for t in range(per_client)
            ]

        results = await asyncio.gather(*(client(i) for i in range(clients)))
    return [sample for samples in results for sample in samples]


# --- the agent called directly ----------------------------------------------------------------


async def direct_at(fabric: Fabric, clients: int, per_client: int) -> list[float]:
    """The same agent, model, prompt and tools, run in-process: Pydantic AI alone."""
    loaded = fabric.catalog.get(AGENT)
    agent = build_agent(loaded, fabric.settings)
    prepared = [fabric.catalog.prepare(AGENT, q) for q in QUESTIONS]

    async def call(p: Any) -> float:
        deps = RunDeps(
            run_id=f"direct-{uuid.uuid4().hex[:8]}", tenant_id="bench", user_id="anna",
            agent=AGENT, locale=p.locale, data_dir=fabric.settings.home,
        )  # fmt: skip
        started = time.perf_counter()
        await agent.run(p.user_prompt, instructions=p.instructions, model=p.model, deps=deps)
        return (time.perf_counter() - started) * 1000

    async def client(index: int) -> list[float]:
        return [await call(prepared[(index + t) % len(prepared)]) for t in range(per_client)]

    results = await asyncio.gather(*(client(i) for i in range(clients)))
    return [sample for samples in results for sample in samples]


# --- the non-LLM endpoints --------------------------------------------------------------------


async def reads(base_url: str, key: str, n: int) -> dict[str, list[float]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        conversations = (await http.get("/v1/conversations?limit=100")).json()["data"]
        turns = []
        for c in conversations:
            turns += [
                t["id"]
                for t in (await http.get(f"/v1/conversations/{c['id']}/turns")).json()["data"]
            ]

        async def measure(method: str, url: Any, body: Any = None) -> list[float]:
            samples = []
            for i in range(n + 10):
                started = time.perf_counter()
                response = await http.request(method, url(i), json=body(i) if body else None)
                if response.status_code >= 300:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                if i >= 10:  # warm-up
                    samples.append((time.perf_counter() - started) * 1000)
            return samples

        return {
            "list": await measure("GET", lambda i: "/v1/conversations?limit=20"),
            "get": await measure(
                "GET", lambda i: f"/v1/conversations/{conversations[i % len(conversations)]['id']}"
            ),
            "feedback": await measure(
                "POST",
                lambda i: f"/v1/turns/{turns[i % len(turns)]}/feedback",
                lambda i: {"rating": "up" if i % 2 else "down", "text": "bench"},
            ),
        }


# --- running ----------------------------------------------------------------------------------


def per_client(clients: int, samples: int) -> int:
    return max(2, -(-samples // clients))


def bench_backend(name: str, url: str, samples: int, reads_n: int) -> None:
    # DBOS launches outside any event loop; the measuring runs inside one
    with stack(url) as s:
        asyncio.run(measure(name, s, samples, reads_n))


def median_of(timings: list[TurnTiming], field: str) -> float:
    return statistics.median(getattr(t, field) for t in timings)


async def measure(name: str, s: Stack, samples: int, reads_n: int) -> None:
    # warm-up, one at a time first (the example's sample database is built on first use)
    await turns_at(s.base_url, s.key, 1, 2)
    await direct_at(s.fabric, 1, 2)
    await turns_at(s.base_url, s.key, 4, 2)
    for clients in LEVELS:
        k = per_client(clients, samples)
        timings = await turns_at(s.base_url, s.key, clients, k)
        direct = await direct_at(s.fabric, clients, k)
        (a50, a95), (d50, d95) = summary([t.total for t in timings]), summary(direct)
        print(
            f"{name:<10} {clients:>2} clients  turn+stream p50 {a50:7.1f} ms  p95 {a95:7.1f} ms"
            f"   direct p50 {d50:6.1f} ms  p95 {d95:6.1f} ms"
            f"   ratio p50 {a50 / d50:5.1f}x  p95 {a95 / d95:5.1f}x  (n={len(timings)})"
        )
        parts = "  ".join(
            f"{part} {median_of(timings, part):6.1f}"
            for part in ("submit", "queue", "run", "deliver")
        )
        print(f"{'':<10} {'':>2}          median ms: {parts}")
    for op, values in (await reads(s.base_url, s.key, reads_n)).items():
        p50, p95 = summary(values)
        verdict = "ok" if p95 <= TARGET_P95_MS else "OVER"
        print(
            f"{name:<10} {op:<9} p50 {p50:6.2f} ms  p95 {p95:6.2f} ms"
            f"  ({verdict} vs {TARGET_P95_MS:.0f} ms p95 target, over HTTP)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=40, help="Turns per concurrency level.")
    parser.add_argument("--reads", type=int, default=200, help="Requests per read endpoint.")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "KEEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="An admin URL; a scratch database is created and dropped. 'none' skips PostgreSQL.",
    )
    args = parser.parse_args()
    print(f"cpus {os.cpu_count()}; interactive concurrency 64 per worker and per tenant")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{(Path(tmp) / 'bench.db').as_posix()}"
        bench_backend("sqlite", sqlite_url, args.samples, args.reads)
    if args.pg_url == "none":
        return
    with scratch_database(args.pg_url, optional=True) as url:
        if url is None:
            return
        bench_backend("postgresql", url, args.samples, args.reads)


if __name__ == "__main__":
    main()
