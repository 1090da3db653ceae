"""How an offline model chooses tool calls: by filling each tool's JSON schema from the question.

A parameter is filled from, in order: a run-input field of the same name (typed agents), an
enum value named in the question, a year phrase ("this year", "2027") for `*year*`
parameters, a capitalised place name after a preposition for place parameters, an id-looking
token for `*_id` parameters, and the whole question for free-text parameters. A tool is
callable when every required parameter is filled; it is chosen when at least one parameter
was filled from the request (not a default). Deterministic for a given question and date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic_ai.tools import ToolDefinition

TEXT_PARAMS = frozenset({"question", "query", "q", "text", "prompt", "search", "message"})
PLACE_PARAMS = ("city", "town", "place", "location", "municipality", "area")
_PREPOSITIONS = r"(?:in|at|near|around|i|im|en|à|au|v|ve|vo|w|u)"
_PLACE = re.compile(rf"\b{_PREPOSITIONS}\s+([A-ZÅÄÖÆØÉÜČŠŽ][\w\-]+(?:\s[A-ZÅÄÖÆØÉÜČŠŽ][\w\-]+)?)")
_ID_TOKEN = re.compile(r"\b([A-Za-z]{1,6}[-_][A-Za-z0-9][A-Za-z0-9\-_]{2,})\b")
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_WORD = re.compile(r"[\wåäöæøéüčšžř]+", re.IGNORECASE)
MAX_TOOLS_PER_STEP = 3


@dataclass(frozen=True)
class PlannedCall:
    tool: str
    args: dict[str, Any]
    score: float


def resolve_schema(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` and unwrap `anyOf [X, null]` (an optional field)."""
    seen = 0
    while seen < 8:
        seen += 1
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = dict(root.get("$defs", {}).get(name, {}))
            continue
        options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
            continue
        break
    return schema


def _enum_match(values: list[Any], question: str) -> Any:
    lowered = question.lower()
    for value in sorted(values, key=lambda v: -len(str(v))):
        text = str(value).lower()
        if text and re.search(rf"\b{re.escape(text)}", lowered):
            return value
    return None


def _year(question: str, today: date) -> int | None:
    lowered = question.lower()
    if "next year" in lowered:
        return today.year + 1
    if "last year" in lowered:
        return today.year - 1
    if "this year" in lowered:
        return today.year
    match = _YEAR.search(question)
    return int(match.group(1)) if match else None


def _coerce(value: Any, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "string":
            return str(value)
    except (TypeError, ValueError):
        return None
    return value


def _fill(
    name: str, schema: dict[str, Any], question: str, run_input: dict[str, Any], today: date
) -> Any:
    if name in run_input:
        return _coerce(run_input[name], schema)
    if not question:
        return None
    if "enum" in schema:
        return _enum_match(list(schema["enum"]), question)
    kind = schema.get("type")
    lowered = name.lower()
    if kind == "integer" and "year" in lowered:
        return _year(question, today)
    if kind != "string":
        return None
    if lowered in TEXT_PARAMS:
        return question
    if any(p in lowered for p in PLACE_PARAMS):
        match = _PLACE.search(question)
        return match.group(1) if match else None
    if lowered == "id" or lowered.endswith("_id"):
        match = _ID_TOKEN.search(question)
        return match.group(1) if match else None
    return None


def plan_call(
    tool: ToolDefinition, question: str, run_input: dict[str, Any], today: date
) -> PlannedCall | None:
    """The call to TOOL this request supports, or None when a required parameter is unknown."""
    root = tool.parameters_json_schema
    properties: dict[str, Any] = root.get("properties", {})
    required = set(root.get("required", []))
    args: dict[str, Any] = {}
    for name, raw in properties.items():
        value = _fill(name, resolve_schema(raw, root), question, run_input, today)
        if value is not None:
            args[name] = value
    if not required <= set(args) or not args:
        return None
    words = {w.lower() for w in _WORD.findall(question)}
    name_words = set(tool.name.lower().split("_")) | {
        w.lower() for w in _WORD.findall(tool.description or "")
    }
    overlap = len(words & name_words)
    free_text_only = set(args) <= TEXT_PARAMS
    score = len(args) + 0.25 * overlap - (0.5 if free_text_only else 0.0)
    return PlannedCall(tool.name, args, score)


def plan_calls(
    tools: list[ToolDefinition],
    question: str,
    run_input: dict[str, Any],
    today: date,
    already_called: set[str],
) -> list[PlannedCall]:
    """The tool calls for the first step of a turn, best first (at most three)."""
    planned = [
        call
        for tool in tools
        if tool.name not in already_called
        and (call := plan_call(tool, question, run_input, today)) is not None
    ]
    planned.sort(key=lambda c: (-c.score, c.tool))
    if question and planned:
        best = planned[0].score
        planned = [c for c in planned if c.score >= best - 0.5]
    return planned[:MAX_TOOLS_PER_STEP]
