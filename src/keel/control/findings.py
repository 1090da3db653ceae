"""The detector contract shared by every guardrail: a `Finding` and the `GuardrailContext`.

A detector is any callable `(text: str, context: GuardrailContext) -> Sequence[Finding]`.
Spans (`start`, `end`) index into the `text` the detector was given; a finding without a span
concerns the whole text (it can block or warn, but not be redacted precisely).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

Stage = Literal["input", "output", "tool_output"]
STAGES: tuple[Stage, ...] = ("input", "output", "tool_output")


@dataclass(frozen=True)
class GuardrailContext:
    """Where the text comes from. `stage` is "input" (the user's message), "output" (the
    agent's answer) or "tool_output" (a tool result on its way back to the model — the place
    indirect prompt injection arrives)."""

    stage: Stage = "input"
    tenant_id: str | None = None
    agent: str | None = None
    tool: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class Finding:
    """Something a detector found. Never carries the matched text itself (it may be PII):
    use the span to look at it. `path` locates the string inside a JSON value ("$" for plain
    text); `guardrail` names the guardrail that reported it."""

    kind: str
    rule: str
    score: float
    start: int | None = None
    end: int | None = None
    message: str = ""
    path: str = "$"
    guardrail: str = ""

    @property
    def has_span(self) -> bool:
        return self.start is not None and self.end is not None


Detector = Callable[[str, GuardrailContext], Sequence[Finding]]

__all__ = ["STAGES", "Detector", "Finding", "GuardrailContext", "Stage"]
