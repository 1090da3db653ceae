from __future__ import annotations

import asyncio
import zlib

from _probe import effects
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps


async def post_entry(ctx: RunContext[RunDeps], question: str) -> dict[str, object]:
    """Post the entry: takes 50–250 ms (so a crash can land inside it), then applies the
    effect once per idempotency key."""
    key = ctx.deps.idempotency_key(ctx.tool_call_id or "")
    effects.attempt(ctx.deps.data_dir, "post_entry", key)
    await asyncio.sleep(0.05 + (zlib.crc32(key.encode()) % 200) / 1000)
    applied = effects.effect(ctx.deps.data_dir, key, ctx.deps.run_id, question)
    return {"posted": True, "first_time": applied}
