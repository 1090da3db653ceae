"""API read latency: p50/p95 of list, get and feedback, on SQLite and PostgreSQL.

Requests go through the real app (auth by API key, rate limiter, problem handlers, body
limit, threadpool DB work) over httpx's ASGITransport, one at a time. Printed against the
200 ms p95 target of seed 003 and as a ratio to a bare FastAPI route returning a constant
(the framework's own floor on this machine).

    .venv/bin/python -m bench.bench_api_reads [--requests 300] [--pg-url postgresql+psycopg://…]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from bench.scratch_pg import scratch_database
from keel.api.app import create_app
from keel.fabric.catalog import AgentCatalog
from keel.fabric.service import Fabric
from keel.fabric.turns import create_conversation, submit_turn
from keel.identity.keys import create_key
from keel.identity.principal import Principal
from keel.settings import RateLimitSetting, Settings
from keel.store.database import Database

TARGET_P95_MS = 200.0
CONVERSATIONS = 200
TURNS_PER_CONVERSATION = 5


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(
    call: Callable[[int], Awaitable[httpx.Response]], n: int, ok: set[int]
) -> list[float]:
    for i in range(max(10, n // 10)):  # warm-up
        await call(i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        response = await call(i)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code not in ok:
            raise RuntimeError(f"unexpected {response.status_code}: {response.text}")
    return samples


def seed(fabric: Fabric) -> tuple[str, list[str], list[str]]:
    """Conversations with turns, recorded through the one write path (their runs stay
    queued: this fabric only submits)."""
    secret = create_key(fabric.db, "bench", "anna").secret
    principal = Principal(tenant_id="bench", user_id="anna", scopes=("*",))
    conversations, turns = [], []
    for i in range(CONVERSATIONS):
        conv = create_conversation(fabric, principal, "rune", {"i": i})
        conversations.append(conv)
        for t in range(TURNS_PER_CONVERSATION):
            turn, _ = submit_turn(fabric, principal, conv, {"question": f"question {t}"})
            turns.append(turn.id)
    return secret, conversations, turns


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")


async def bench_backend(name: str, url: str, n: int) -> dict[str, list[float]]:
    db = Database(url)
    db.upgrade()
    # the rate limiter stays in the path, with buckets large enough never to deny
    unlimited = RateLimitSetting(capacity=1e9, refill_per_second=1e9)
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            env="test",
            home=Path(home),
            database_url=url,
            agents_dirs=[Path(__file__).resolve().parents[1] / "examples" / "agents"],
            rate_limits=dict.fromkeys(("turns", "runs", "reads", "writes"), unlimited),
            _env_file=None,  # type: ignore[call-arg]
        )
        fabric = Fabric(settings, db, AgentCatalog.load(settings, db))
        fabric.start(execute=False)
        try:
            return await _measure_backend(fabric, settings, n, *seed(fabric))
        finally:
            fabric.stop()
            db.dispose()


async def _measure_backend(
    fabric: Fabric,
    settings: Settings,
    n: int,
    secret: str,
    conversations: list[str],
    turns: list[str],
) -> dict[str, list[float]]:
    app = create_app(settings, fabric.db, fabric=fabric)
    headers = {"Authorization": f"Bearer {secret}"}
    results: dict[str, list[float]] = {}
    async with client(app) as c:
        results["list"] = await measure(
            lambda i: c.get("/v1/conversations?limit=20", headers=headers), n, {200}
        )
        results["get"] = await measure(
            lambda i: c.get(
                f"/v1/conversations/{conversations[i % len(conversations)]}", headers=headers
            ),
            n,
            {200},
        )
        results["feedback"] = await measure(
            lambda i: c.post(
                f"/v1/turns/{turns[i % len(turns)]}/feedback",
                json={"rating": "up" if i % 2 else "down", "text": "bench"},
                headers=headers,
            ),
            n,
            {200, 201},
        )
    return results


async def bench_floor(n: int) -> list[float]:
    bare = FastAPI()

    @bare.get("/const")
    def const() -> dict[str, bool]:
        return {"ok": True}

    async with client(bare) as c:
        return await measure(lambda i: c.get("/const"), n, {200})


def report(name: str, results: dict[str, list[float]], floor_p50: float) -> None:
    for op, samples in results.items():
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        verdict = "ok" if p95 <= TARGET_P95_MS else "OVER"
        print(
            f"{name:<10} {op:<9} p50 {p50:7.2f} ms  p95 {p95:7.2f} ms  "
            f"({verdict} vs {TARGET_P95_MS:.0f} ms p95 target)  {p50 / floor_p50:5.1f}x bare route"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "KEEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="An admin URL; a scratch database is created and dropped. 'none' skips PostgreSQL.",
    )
    args = parser.parse_args()
    floor = asyncio.run(bench_floor(args.requests))
    floor_p50 = statistics.median(floor)
    print(f"bare FastAPI route: p50 {floor_p50:.2f} ms  p95 {percentile(floor, 0.95):.2f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_url = f"sqlite:///{(Path(tmp) / 'bench.db').as_posix()}"
        report("sqlite", asyncio.run(bench_backend("sqlite", sqlite_url, args.requests)), floor_p50)
    if args.pg_url == "none":
        return
    with scratch_database(args.pg_url, optional=True) as url:
        if url is None:
            return
        report(
            "postgresql", asyncio.run(bench_backend("postgresql", url, args.requests)), floor_p50
        )


if __name__ == "__main__":
    main()
