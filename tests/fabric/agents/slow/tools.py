from __future__ import annotations

import asyncio

from _probe import effects
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps


async def wait_for_release(ctx: RunContext[RunDeps], question: str) -> str:
    """Block until switch 'release' is set (polling the probe database)."""
    key = ctx.deps.idempotency_key(ctx.tool_call_id or "")
    effects.attempt(ctx.deps.data_dir, "wait", key)
    while effects.switch(ctx.deps.data_dir, "release") is None:
        await asyncio.sleep(0.02)
    return "released"
