"""Concurrent duplicates, on SQLite and PostgreSQL: twenty simultaneous submissions with one
Idempotency-Key make one turn and one run, and get identical responses — as JSON, as event
streams under a real server, and across two API processes sharing only the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from sqlalchemy import func, select

from keel.store.database import Database
from keel.store.tables import Run, Turn
from tests.api.conftest import (
    Api,
    Live,
    build_app,
    client_for,
    make_settings,
    parse_frames,
    submit_only_fabric,
)

QUESTION = {"question": "Which hospital projects in Stockholm start this year?"}


def counts(db: Database, conversation_id: str) -> tuple[int, int]:
    with db.transaction() as s:
        turns = s.scalar(
            select(func.count()).select_from(Turn).where(Turn.conversation_id == conversation_id)
        )
        runs = s.scalar(
            select(func.count()).select_from(Run).where(Run.conversation_id == conversation_id)
        )
    return int(turns or 0), int(runs or 0)


async def test_twenty_concurrent_posts_with_one_key_make_one_turn_and_one_run(
    live: Api,
) -> None:
    conversation_id = await live.conversation()
    headers = {**live.headers(), "Idempotency-Key": "burst-1"}
    responses = await asyncio.gather(
        *[
            live.client.post(
                f"/v1/conversations/{conversation_id}/turns", json={"input": QUESTION},
                headers=headers,
            )
            for _ in range(20)
        ]
    )  # fmt: skip
    assert {r.status_code for r in responses} == {202}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers["location"] for r in responses}) == 1
    assert sum("idempotent-replayed" in r.headers for r in responses) == 19
    assert counts(live.db, conversation_id) == (1, 1)


async def test_twenty_concurrent_streamed_posts_with_one_key_get_identical_streams(
    server: Live,
) -> None:
    conversation_id = await server.conversation()
    headers = {
        **server.headers(),
        "Accept": "text/event-stream",
        "Idempotency-Key": "burst-stream",
    }
    async with server.http() as http:
        responses = await asyncio.gather(
            *[
                http.post(
                    f"/v1/conversations/{conversation_id}/turns", json={"input": QUESTION},
                    headers=headers,
                )
                for _ in range(20)
            ]
        )  # fmt: skip
    assert {r.status_code for r in responses} == {200}
    streams = {
        tuple((f.id, f.event, str(f.data)) for f in parse_frames(r.text) if not f.comment)
        for r in responses
    }
    assert len(streams) == 1
    (stream,) = streams
    assert stream[-1][1] == "run.succeeded"
    assert len({r.headers["keel-turn-id"] for r in responses}) == 1
    assert counts(server.db, conversation_id) == (1, 1)


async def test_duplicates_across_two_api_processes_make_one_turn(
    database_url: str, tmp_path: Path
) -> None:
    """Two apps with their own engines and fabrics share only the database."""
    dbs = [Database(database_url), Database(database_url)]
    dbs[0].upgrade()
    try:
        with (
            submit_only_fabric(dbs[0], tmp_path / "a") as first,
            submit_only_fabric(dbs[1], tmp_path / "b") as second,
        ):
            apps = [
                build_app(d, make_settings(tmp_path), fabric=f)
                for d, f in ((dbs[0], first), (dbs[1], second))
            ]
            async with client_for(apps[0]) as c0, client_for(apps[1]) as c1:
                api = Api(apps[0], c0, dbs[0], first)
                conversation_id = await api.conversation()
                headers = {**api.headers(), "Idempotency-Key": "cross-process-turn"}
                clients: list[httpx.AsyncClient] = [c0, c1]
                responses = await asyncio.gather(
                    *[
                        clients[i % 2].post(
                            f"/v1/conversations/{conversation_id}/turns",
                            json={"input": QUESTION}, headers=headers,
                        )
                        for i in range(20)
                    ]
                )  # fmt: skip
        assert {r.status_code for r in responses} == {202}
        assert len({r.content for r in responses}) == 1
        assert counts(dbs[0], conversation_id) == (1, 1)
    finally:
        for d in dbs:
            d.dispose()
