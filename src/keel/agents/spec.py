"""The `agent.yaml` schema: Keel's fields for one agent.

Sections owned by later planes (memory, policies, budget, guardrails, evals) are kept as
plain data here and interpreted by those planes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
MODEL_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+:[^\s]+$")
TYPE_REF_PATTERN = re.compile(r"^(text|schema:[A-Za-z_][A-Za-z0-9_]*)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_model(value: str) -> str:
    if not MODEL_PATTERN.match(value):
        raise ValueError(f"{value!r} is not a model string like 'openai:gpt-4o' or 'offline:chat'")
    return value


class ModelRoute(_Strict):
    when: dict[str, list[str] | str]
    model: str

    _check = field_validator("model")(_check_model)


class ModelSpec(_Strict):
    default: str
    routes: list[ModelRoute] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)

    _check = field_validator("default")(_check_model)


class PromptRef(_Strict):
    name: str | None = None
    alias: str = "production"
    file: str = "prompt.md"
    variables: dict[str, str] = Field(default_factory=dict)


class ToolRef(_Strict):
    name: str
    requires_approval: bool = False


class Retries(_Strict):
    model: int = Field(default=2, ge=0, le=10)
    tool: int = Field(default=2, ge=0, le=10)
    output: int = Field(default=1, ge=0, le=10)


class AgentSpec(_Strict):
    name: str
    description: str = ""
    model: ModelSpec
    prompt: PromptRef = Field(default_factory=PromptRef)
    input: str = "text"
    output: str = "text"
    tools: list[ToolRef] = Field(default_factory=list)
    memory: dict[str, Any] = Field(default_factory=dict)
    policies: list[str] = Field(default_factory=list)
    budget: dict[str, Any] = Field(default_factory=dict)
    guardrails: dict[str, Any] = Field(default_factory=dict)
    evals: dict[str, Any] = Field(default_factory=dict)
    runners: list[Literal["interactive", "batch"]] = Field(
        default_factory=lambda: list[Literal["interactive", "batch"]](["interactive", "batch"])
    )
    retries: Retries = Field(default_factory=Retries)
    timeout_seconds: int = Field(default=300, gt=0, le=7 * 24 * 3600)
    double_texting: Literal["reject", "enqueue", "interrupt"] = "enqueue"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError("must be lowercase letters, digits and '-', starting with a letter")
        return value

    @field_validator("input", "output")
    @classmethod
    def _type_ref(cls, value: str) -> str:
        if not TYPE_REF_PATTERN.match(value):
            raise ValueError("must be 'text' or 'schema:<ClassName in schema.py>'")
        return value

    @field_validator("tools", mode="before")
    @classmethod
    def _tool_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @property
    def prompt_name(self) -> str:
        return self.prompt.name or self.name
