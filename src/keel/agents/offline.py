"""Offline models (`offline:<label>`): deterministic stand-ins for an LLM, so every example,
demo and CI run works with no keys.

A chat agent's offline model plans tool calls from the question (see `offline_planner`),
calls them, then answers from their results; a typed agent's produces output valid against
its output schema that depends on its input and tool results (see `offline_writer`). Both
follow the directives in their instructions (`offline_directives`): answer language, word
range, next step, persuasive or exhaustive wording. The label after `offline:` only names the
model (e.g. for routing); every label behaves the same. Same messages in, same response out:
tool call ids are numbered, not random, and "this year" is read from the run's date.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from keel.agents.offline_directives import Conversation, Directives
from keel.agents.offline_planner import plan_calls
from keel.agents.offline_writer import chat_answer, structured_output

STREAM_CHUNK_WORDS = 4


def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The offline model's next response to MESSAGES."""
    conv = Conversation.read(messages)
    directives = Directives.parse(info.instructions)
    step = conv.responses_so_far + 1
    if not conv.results and conv.retry is None:
        today = datetime.now(UTC).date()
        planned = plan_calls(
            info.function_tools, conv.question, conv.input, today, conv.called_tools
        )
        if planned:
            return ModelResponse(
                parts=[
                    ToolCallPart(c.tool, c.args, tool_call_id=f"call_{step}_{i}")
                    for i, c in enumerate(planned)
                ]
            )
    if info.output_tools:
        tool = info.output_tools[0]
        args = structured_output(conv, directives, tool.parameters_json_schema)
        return ModelResponse(parts=[ToolCallPart(tool.name, args, tool_call_id=f"call_{step}_out")])
    return ModelResponse(parts=[TextPart(chat_answer(conv, directives))])


async def _respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    return respond(messages, info)


async def _stream(
    messages: list[ModelMessage], info: AgentInfo
) -> AsyncIterator[str | DeltaToolCalls]:
    response = respond(messages, info)
    for index, part in enumerate(response.parts):
        if isinstance(part, ToolCallPart):
            yield {
                index: DeltaToolCall(
                    name=part.tool_name,
                    json_args=json.dumps(part.args),
                    tool_call_id=part.tool_call_id,
                )
            }
        elif isinstance(part, TextPart):
            tokens = part.content.split(" ")
            for start in range(0, len(tokens), STREAM_CHUNK_WORDS):
                chunk = " ".join(tokens[start : start + STREAM_CHUNK_WORDS])
                yield chunk if start == 0 else " " + chunk


class OfflineModel(FunctionModel):
    """`offline:<label>`: a deterministic model that needs no keys and no network."""

    def __init__(self, name: str = "offline:chat") -> None:
        super().__init__(_respond, stream_function=_stream, model_name=name)
        self._system = "offline"
