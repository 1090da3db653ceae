"""What an offline model reads from its instructions and conversation.

`Directives` are the handful of prompt instructions the offline models honour, so that a
better prompt gives measurably better offline output (which is what makes eval-gated
promotion demonstrable without a real model). `Facts` are the values the model may write
about: the run input (typed agents send it as JSON) and what the tools returned.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_core import to_jsonable_python

from keel.agents.locale import LANGUAGES

_LANGUAGE_CODES = {name.lower(): code for code, name in LANGUAGES.items()}
_ANSWER_IN = re.compile(
    r"\b(?:answer|respond|reply|write|written)\b[^.\n]*?\bin\s+([A-Za-z]+)", re.IGNORECASE
)
_WORD_RANGE = re.compile(r"(\d{1,4})\s*(?:–|-|to)\s*(\d{1,4})\s*words", re.IGNORECASE)
_PERSUASIVE = re.compile(
    r"\b(persuasive|superlatives?|enthusiastic|impressive|sell hard)\b", re.IGNORECASE
)
_EXHAUSTIVE = re.compile(
    r"\b(as much detail as possible|exhaustive|every detail|be thorough)\b", re.IGNORECASE
)
_CLOSE_WITH_STEP = re.compile(
    r"\b(?:end|close|finish)s?\s+(?:the|your)\s+(?:snapshot|summary|paragraph|text)"
    r"(?:\s+itself)?\s+with\b",
    re.IGNORECASE,
)

# Facts a prompt can ask for by naming them; value → words that name it in a prompt.
MENTIONABLE: dict[str, tuple[str, ...]] = {
    "value": ("value",),
    "stage": ("stage",),
    "start_date": ("start date", "start"),
    "end_date": ("completion", "end date"),
    "owner": ("owner", "client"),
    "contractor": ("contractor",),
    "region": ("region",),
}
BASIC_FACTS = ("value", "stage", "start_date")


@dataclass(frozen=True)
class Directives:
    """Instructions an offline model follows.

    - language: from "answer/respond/write … in <Language>"; English otherwise.
    - words: a "N–M words" range; None when the prompt gives none.
    - next_step: the prompt asks for a next step ("next step").
    - persuasive: asks for persuasive/enthusiastic wording (adds praise sentences).
    - exhaustive: asks for as much detail as possible (ignores any length range).
    - close_with_step: asks for the prose ("end the snapshot with …") to end with the next
      step, which is then its last sentence as well as the next-step field.
    - mentions: facts the prompt names (value, stage, start date, owner/client, …), written
      in addition to the basics (value, stage, start date).
    """

    language: str = "en"
    words: tuple[int, int] | None = None
    next_step: bool = False
    persuasive: bool = False
    exhaustive: bool = False
    close_with_step: bool = False
    mentions: tuple[str, ...] = ()

    @classmethod
    def parse(cls, instructions: str | None) -> Directives:
        text = instructions or ""
        language = "en"
        match = _ANSWER_IN.search(text)
        if match and match.group(1).lower() in _LANGUAGE_CODES:
            language = _LANGUAGE_CODES[match.group(1).lower()]
        else:
            named = [
                code
                for name, code in _LANGUAGE_CODES.items()
                if re.search(rf"\b{name}\b", text, re.IGNORECASE)
            ]
            if len(named) == 1:
                language = named[0]
        words = None
        if (m := _WORD_RANGE.search(text)) is not None:
            lo, hi = sorted((int(m.group(1)), int(m.group(2))))
            words = (lo, hi)
        lowered = text.lower()
        mentions = tuple(
            key for key, names in MENTIONABLE.items() if any(n in lowered for n in names)
        )
        return cls(
            language=language,
            words=words,
            next_step="next step" in lowered,
            persuasive=_PERSUASIVE.search(text) is not None,
            exhaustive=_EXHAUSTIVE.search(text) is not None,
            close_with_step=_CLOSE_WITH_STEP.search(text) is not None,
            mentions=mentions,
        )

    def facts_to_write(self) -> list[str]:
        keys = list(BASIC_FACTS)
        keys += [k for k in self.mentions if k not in keys]
        return keys


@dataclass
class ToolResult:
    tool: str
    content: Any
    refused: bool = False


@dataclass
class Conversation:
    """The current turn as the offline model sees it."""

    question: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    results: list[ToolResult] = field(default_factory=list)
    called_tools: set[str] = field(default_factory=set)
    retry: str | None = None
    responses_so_far: int = 0

    @property
    def facts(self) -> dict[str, Any]:
        """Scalar facts by name: run input first, then each tool result (later wins)."""
        merged: dict[str, Any] = dict(self.input)
        for result in self.results:
            if isinstance(result.content, dict):
                merged.update(result.content)
        return merged

    @classmethod
    def read(cls, messages: list[ModelMessage]) -> Conversation:
        """The latest user prompt and everything that happened after it."""
        conv = cls(responses_so_far=sum(isinstance(m, ModelResponse) for m in messages))
        start = 0
        for i, message in enumerate(messages):
            if isinstance(message, ModelRequest) and any(
                isinstance(p, UserPromptPart) for p in message.parts
            ):
                start = i
        for message in messages[start:]:
            if isinstance(message, ModelResponse):
                conv.called_tools |= {
                    p.tool_name for p in message.parts if isinstance(p, ToolCallPart)
                }
                continue
            for part in message.parts:
                if isinstance(part, UserPromptPart):
                    conv._read_prompt(part)
                elif isinstance(part, ToolReturnPart):
                    content = to_jsonable_python(part.content, fallback=str)
                    refused = part.outcome in ("denied", "failed")
                    conv.results.append(ToolResult(part.tool_name, content, refused))
                elif isinstance(part, RetryPromptPart):
                    if part.tool_name is None or part.tool_name not in conv.called_tools:
                        conv.retry = part.model_response()
                    else:
                        conv.results.append(
                            ToolResult(part.tool_name, part.model_response(), refused=True)
                        )
        return conv

    def _read_prompt(self, part: UserPromptPart) -> None:
        text = part.content if isinstance(part.content, str) else ""
        self.question = text
        try:
            parsed = json.loads(text)
        except ValueError:
            return
        if isinstance(parsed, dict):
            self.input = parsed
            self.question = ""
