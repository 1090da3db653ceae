from __future__ import annotations

from _probe import effects
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps


def pay_invoice(ctx: RunContext[RunDeps], question: str) -> dict[str, object]:
    """Pay the invoice the question names (an external effect, deduplicated by key)."""
    key = ctx.deps.idempotency_key(ctx.tool_call_id or "")
    effects.attempt(ctx.deps.data_dir, "pay_invoice", key)
    applied = effects.effect(ctx.deps.data_dir, key, ctx.deps.run_id, question)
    return {"paid": True, "first_time": applied, "key": key}
