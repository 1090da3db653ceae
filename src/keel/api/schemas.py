"""Request and response bodies: separate Create and Public models per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from keel.api.pagination import Page
from keel.fabric.approvals import ApprovalView
from keel.fabric.events import Event
from keel.fabric.runs import RunView
from keel.fabric.turns import TurnView
from keel.store.tables import Conversation, Feedback

AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 64
FEEDBACK_TEXT_MAX = 4000
NOTE_MAX = 2000

DoubleTexting = Literal["reject", "enqueue", "interrupt"]
RunStatusName = Literal[
    "queued", "running", "waiting_approval", "succeeded", "failed", "cancelled", "timed_out",
    "blocked",
]  # fmt: skip
ApprovalStatusName = Literal["pending", "approved", "rejected", "expired"]


def _status(value: str) -> RunStatusName:
    statuses: tuple[RunStatusName, ...] = (
        "queued", "running", "waiting_approval", "succeeded", "failed", "cancelled",
        "timed_out", "blocked",
    )  # fmt: skip
    for status in statuses:
        if status == value:
            return status
    raise ValueError(f"unknown run status {value!r}")


class ConversationCreate(BaseModel):
    """Open a conversation with an agent. Tenant and user come from the credentials."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100, pattern=AGENT_NAME_PATTERN, examples=["rune"])
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        max_length=METADATA_MAX_KEYS,
        description=f"Free-form JSON: at most {METADATA_MAX_KEYS} keys of at most "
        f"{METADATA_MAX_KEY_LENGTH} characters; the server limits its serialised size.",
    )

    @field_validator("metadata")
    @classmethod
    def _keys_are_short(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not key or len(key) > METADATA_MAX_KEY_LENGTH:
                raise ValueError(f"metadata keys must be 1-{METADATA_MAX_KEY_LENGTH} characters")
        return value


class ConversationPublic(BaseModel):
    id: str = Field(examples=["conv_01JD3Y6Q5M8ZK3Q0V7R9T2W4XA"])
    agent: str
    title: str | None = Field(description="Derived from the first turn; null before it.")
    preview: str | None = Field(description="The latest turn's text, shortened.")
    turn_count: int
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Conversation) -> ConversationPublic:
        return cls(
            id=row.id,
            agent=row.agent,
            title=row.title,
            preview=row.preview,
            turn_count=row.turn_count,
            metadata=row.meta,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class ConversationPage(Page[ConversationPublic]):
    """Conversations, newest first."""


class TurnCreate(BaseModel):
    """A new turn: the agent's input, as its input schema says (`GET /v1/agents/{name}`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"input": {"question": "Vilka sjukhusprojekt startar i år?", "locale": "sv"}}
        },
    )

    input: dict[str, Any] = Field(
        description="The agent's input. Chat agents (`input: text`) take "
        '`{"question": str, "locale": str | null}`; typed agents their own schema. '
        "Invalid fields are named `body.input.<field>`.",
    )
    double_texting: DoubleTexting | None = Field(
        default=None,
        description="What to do when an earlier turn has not ended: `reject` (409), `enqueue` "
        "(run after it) or `interrupt` (cancel it). Default: the agent's `double_texting`.",
    )


class TurnPublic(BaseModel):
    """A turn and the live state of its run: a cancelled turn keeps its partial output and the
    usage so far."""

    id: str = Field(examples=["turn_01JD3Y6Q5M8ZK3Q0V7R9T2W4XA"])
    conversation_id: str
    index: int = Field(description="0 for the first turn of the conversation.")
    status: RunStatusName = Field(description="Its run's status.")
    input: dict[str, Any]
    output: dict[str, Any] | None = Field(
        description='`{"type": "text", "text": …}` or `{"type": "object", '
        '"data": …}`; `partial: true` when the run ended early (cancelled, failed).'
    )
    run_id: str | None
    usage: dict[str, Any] = Field(
        description="Tokens and requests so far: input_tokens, output_tokens, requests, tool_calls."
    )
    cost_usd: float
    error: dict[str, Any] | None = Field(description="Why the run failed, when it did.")
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_view(cls, view: TurnView) -> TurnPublic:
        return cls(
            id=view.id,
            conversation_id=view.conversation_id,
            index=view.index,
            status=_status(view.status),
            input=view.input,
            output=view.output,
            run_id=view.run_id,
            usage=view.usage,
            cost_usd=view.cost_usd,
            error=view.error,
            created_at=view.created_at,
            completed_at=view.completed_at,
        )


class TurnList(BaseModel):
    """Every turn of a conversation, oldest first (the full replay)."""

    data: list[TurnPublic]


class FeedbackCreate(BaseModel):
    """Thumbs up or down, with optional text. A second POST by the same user updates it."""

    model_config = ConfigDict(extra="forbid")

    rating: Literal["up", "down"]
    text: str = Field(default="", max_length=FEEDBACK_TEXT_MAX)


class FeedbackPublic(BaseModel):
    id: str = Field(examples=["fb_01JD3Y6Q5M8ZK3Q0V7R9T2W4XA"])
    turn_id: str
    rating: Literal["up", "down"]
    text: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Feedback) -> FeedbackPublic:
        rating: Literal["up", "down"] = "up" if row.rating == "up" else "down"
        return cls(
            id=row.id,
            turn_id=row.turn_id,
            rating=rating,
            text=row.text,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class RunCreate(BaseModel):
    """A one-shot run of an agent. Tenant and user come from the credentials."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {"input": {"project_id": "P-1001", "role": "electrician", "locale": "sv"}}
        },
    )

    input: dict[str, Any] = Field(
        description="The agent's input (its `input_schema`); invalid fields are named "
        "`body.input.<field>`."
    )
    prompt: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="A prompt alias (`production`, `staging`, …) or version number; default "
        "the agent's alias.",
    )
    priority: int = Field(default=5, ge=1, le=9, description="1 runs first.")
    lane: Literal["interactive", "batch"] = "interactive"
    deadline: datetime | None = Field(
        default=None, description="The run times out if not finished by then (timezone-aware)."
    )


class RunPublic(BaseModel):
    """A run: one execution of an agent (a turn, a one-shot call, a batch item)."""

    id: str = Field(examples=["run_01JD3Y6Q5M8ZK3Q0V7R9T2W4XA"])
    agent: str
    status: RunStatusName
    input: dict[str, Any]
    output: dict[str, Any] | None = Field(
        description='Typed agents: `{"type": "object", "data": {…}}` matching the '
        'agent\'s `output_schema`; chat agents: `{"type": "text", "text": …}`. '
        "`partial: true` when the run ended early."
    )
    error: dict[str, Any] | None
    usage: dict[str, Any]
    cost_usd: float
    model: str
    prompt_name: str | None
    prompt_version: int | None
    spec_version: str
    priority: int
    lane: str
    deadline: datetime | None
    conversation_id: str | None
    turn_id: str | None
    after_run_id: str | None = Field(description="The run this one waits for (queued turns).")
    segment: int = Field(description="Approval rounds so far.")
    redrives: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def from_view(cls, view: RunView) -> RunPublic:
        return cls(
            id=view.id,
            agent=view.agent,
            status=_status(view.status),
            input=view.input,
            output=view.output,
            error=view.error,
            usage=view.usage,
            cost_usd=view.cost_usd,
            model=view.model,
            prompt_name=view.prompt_name,
            prompt_version=view.prompt_version,
            spec_version=view.spec_version,
            priority=view.priority,
            lane=view.lane,
            deadline=view.deadline,
            conversation_id=view.conversation_id,
            turn_id=view.turn_id,
            after_run_id=view.after_run_id,
            segment=view.segment,
            redrives=view.redrives,
            created_at=view.created_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
        )


class RunEventPublic(BaseModel):
    """One event of a run, as each SSE `data:` line carries it (`seq` is also the SSE id)."""

    run_id: str
    seq: int = Field(description="1, 2, 3, … per run; reconnect with `Last-Event-ID: <seq>`.")
    type: str = Field(examples=["run.started", "tool.result", "output", "run.succeeded"])
    data: dict[str, Any]
    created_at: datetime | None

    @classmethod
    def from_event(cls, event: Event) -> RunEventPublic:
        return cls(
            run_id=event.run_id,
            seq=event.seq,
            type=event.type,
            data=event.data,
            created_at=event.created_at,
        )


class ApprovalPublic(BaseModel):
    """A tool call waiting for (or given) a human decision."""

    id: str = Field(examples=["apr_01JD3Y6Q5M8ZK3Q0V7R9T2W4XA"])
    run_id: str
    tool: str
    args: dict[str, Any]
    reason: str
    requested_by: str
    status: ApprovalStatusName
    decided_by: str | None
    note: str
    created_at: datetime
    expires_at: datetime = Field(description="Undecided by then, it counts as rejected.")
    decided_at: datetime | None

    @classmethod
    def from_view(cls, view: ApprovalView) -> ApprovalPublic:
        statuses: tuple[ApprovalStatusName, ...] = ("pending", "approved", "rejected", "expired")
        status = next(s for s in statuses if s == view.status)
        return cls(
            id=view.id,
            run_id=view.run_id,
            tool=view.tool,
            args=view.args,
            reason=view.reason,
            requested_by=view.requested_by,
            status=status,
            decided_by=view.decided_by,
            note=view.note,
            created_at=view.created_at,
            expires_at=view.expires_at,
            decided_at=view.decided_at,
        )


class ApprovalPage(Page[ApprovalPublic]):
    """Approvals, newest first."""


class ApprovalDecision(BaseModel):
    """An optional note recorded with the decision (the decider is the caller)."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=NOTE_MAX)


class AgentPublic(BaseModel):
    name: str
    description: str | None = None


class AgentList(BaseModel):
    data: list[AgentPublic]


class ModelRoutePublic(BaseModel):
    when: dict[str, list[str] | str]
    model: str


class AgentModel(BaseModel):
    default: str
    routes: list[ModelRoutePublic]


class AgentPrompt(BaseModel):
    name: str
    alias: str = Field(description="The alias runs use by default.")
    version: int | None = Field(description="The version that alias points at now.")
    aliases: dict[str, int] = Field(description="Every alias of the prompt → its version.")


class AgentTool(BaseModel):
    name: str
    description: str
    requires_approval: bool


class AgentDescription(BaseModel):
    """What an agent takes, returns and may do."""

    name: str
    description: str
    spec_version: str = Field(description="Content hash of the agent's folder.")
    input_schema: dict[str, Any] = Field(description="JSON Schema of `input`.")
    output_schema: dict[str, Any] = Field(
        description="JSON Schema of the output: of `data` for typed agents, a string for chat."
    )
    output_kind: Literal["text", "object"]
    model: AgentModel
    prompt: AgentPrompt
    tools: list[AgentTool]
    runners: list[str]
    double_texting: DoubleTexting
    timeout_seconds: int
