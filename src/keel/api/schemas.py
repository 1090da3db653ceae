"""Request and response bodies: separate Create and Public models per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from keel.api.pagination import Page
from keel.store.tables import Conversation, Feedback, Turn

AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 64
FEEDBACK_TEXT_MAX = 4000


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


class TurnPublic(BaseModel):
    id: str = Field(examples=["turn_01JD3Y6Q5M8ZK3Q0V7R9T2W4XA"])
    conversation_id: str
    index: int = Field(description="0 for the first turn of the conversation.")
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    run_id: str | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, row: Turn) -> TurnPublic:
        return cls(
            id=row.id,
            conversation_id=row.conversation_id,
            index=row.index,
            status=row.status,
            input=row.input,
            output=row.output,
            run_id=row.run_id,
            created_at=row.created_at,
            completed_at=row.completed_at,
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


class AgentPublic(BaseModel):
    name: str


class AgentList(BaseModel):
    data: list[AgentPublic]
