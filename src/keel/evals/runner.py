"""The contract between evals and whatever produces an agent's output for a case.

Evals never import the agent loader or the runtime: `run_experiment` is handed a
`CaseRunner`, an async callable `(case, prompt_version) -> CaseOutput`. The runtime
provides one that executes the agent (durably or not); tests and benchmarks provide
in-process ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from keel.evals.dataset import EvalCase

if TYPE_CHECKING:
    from keel.evals.registry import ResolvedPrompt


@dataclass(frozen=True)
class PromptVersionRef:
    """Which prompt version a runner must use: `name@version` (template optional)."""

    name: str
    version: int
    template: str | None = None

    @classmethod
    def from_resolved(cls, prompt: ResolvedPrompt) -> PromptVersionRef:
        return cls(prompt.name, prompt.version, prompt.template)

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


class CaseOutput(BaseModel):
    """What one agent execution produced for one case.

    `output` is the agent's text or its structured output as a JSON-able dict; `error` is
    set (and `output` usually None) when the run failed. Latency, cost and tokens feed the
    latency/cost scorers and the report.
    """

    model_config = ConfigDict(frozen=True)

    output: str | dict[str, Any] | None = None
    latency_ms: float = Field(default=0.0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    tokens: int = Field(default=0, ge=0)
    error: str | None = None
    run_id: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


CaseRunner = Callable[[EvalCase, PromptVersionRef], Awaitable[CaseOutput]]
"""Produces the agent's output for `case` under `prompt`. May raise: the experiment records
the exception as a failed case (`CaseOutput.error`) and goes on."""
