"""The API's resources as typed models (mirroring `openapi.json`; a test keeps them in step).

Unknown fields a newer server adds are ignored, so an older client keeps working.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal[
    "queued", "running", "waiting_approval", "succeeded", "failed", "cancelled", "timed_out",
    "blocked",
]  # fmt: skip
ApprovalStatus = Literal["pending", "approved", "rejected", "expired"]
DoubleTexting = Literal["reject", "enqueue", "interrupt"]
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "cancelled", "timed_out", "blocked"}
)
TERMINAL_EVENTS: frozenset[str] = frozenset(
    {"run.succeeded", "run.failed", "run.cancelled", "run.timed_out", "run.blocked"}
)
WAITING_EVENT = "run.waiting_approval"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FieldError(_Model):
    field: str
    message: str


class Problem(_Model):
    """RFC 9457 problem details with Keel's stable `code` and per-field `errors`."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str
    errors: list[FieldError] | None = None


class Conversation(_Model):
    id: str
    agent: str
    title: str | None
    preview: str | None
    turn_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def _text(output: dict[str, Any] | None) -> str | None:
    if output and output.get("type") == "text":
        return str(output.get("text", ""))
    return None


def _data(output: dict[str, Any] | None) -> Any:
    return output.get("data") if output and output.get("type") == "object" else None


class Turn(_Model):
    """A turn with its run's live status, output, usage and error."""

    id: str
    conversation_id: str
    index: int
    status: RunStatus
    input: dict[str, Any]
    output: dict[str, Any] | None
    run_id: str | None
    usage: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float = 0.0
    error: dict[str, Any] | None = None
    created_at: datetime
    completed_at: datetime | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def text(self) -> str | None:
        """The answer of a chat agent (partial when `output["partial"]`)."""
        return _text(self.output)


class Run(_Model):
    id: str
    agent: str
    status: RunStatus
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: dict[str, Any] | None
    usage: dict[str, Any] = Field(default_factory=dict)
    cost_usd: float = 0.0
    model: str
    prompt_name: str | None
    prompt_version: int | None
    spec_version: str
    priority: int
    lane: str
    deadline: datetime | None
    conversation_id: str | None
    turn_id: str | None
    after_run_id: str | None
    segment: int
    redrives: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def text(self) -> str | None:
        """A chat agent's answer."""
        return _text(self.output)

    @property
    def data(self) -> Any:
        """A typed agent's output (the JSON of its output schema), or None."""
        return _data(self.output)


class RunEvent(_Model):
    """One event of a run; `seq` is dense per run and is the stream's resume point."""

    run_id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime | None

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS


class Approval(_Model):
    id: str
    run_id: str
    tool: str
    args: dict[str, Any]
    reason: str
    requested_by: str
    status: ApprovalStatus
    decided_by: str | None
    note: str
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None


class Feedback(_Model):
    id: str
    turn_id: str
    rating: Literal["up", "down"]
    text: str
    created_at: datetime
    updated_at: datetime


class Agent(_Model):
    name: str
    description: str | None = None


class AgentModel(_Model):
    default: str
    routes: list[dict[str, Any]]


class AgentPrompt(_Model):
    name: str
    alias: str
    version: int | None
    aliases: dict[str, int]


class AgentTool(_Model):
    name: str
    description: str
    requires_approval: bool


class AgentDescription(_Model):
    name: str
    description: str
    spec_version: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    output_kind: Literal["text", "object"]
    model: AgentModel
    prompt: AgentPrompt
    tools: list[AgentTool]
    runners: list[str]
    double_texting: DoubleTexting
    timeout_seconds: int
