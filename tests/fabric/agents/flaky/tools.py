from __future__ import annotations

from _probe import effects
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps


def lookup(ctx: RunContext[RunDeps], question: str) -> dict[str, object]:
    """Look up the question. Fails while switch 'broken' is 'always'; fails the first N
    attempts of each call while it is a number N."""
    key = ctx.deps.idempotency_key(ctx.tool_call_id or "")
    n = effects.attempt(ctx.deps.data_dir, "lookup", key)
    mode = effects.switch(ctx.deps.data_dir, "broken")
    if mode == "always" or (mode is not None and mode.isdigit() and n <= int(mode)):
        raise ConnectionError(f"lookup backend unavailable (attempt {n})")
    return {"title": "answer", "attempts": n}
