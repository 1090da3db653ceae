"""How an offline model writes: chat answers from tool results, and structured output from a
JSON schema, in the language and length its directives ask for."""

from __future__ import annotations

import re
from itertools import cycle, islice
from typing import Any

from keel.agents import phrases
from keel.agents.offline_directives import Conversation, Directives, ToolResult
from keel.agents.offline_planner import resolve_schema

TITLE_KEYS = ("title", "name", "headline", "label", "id")
LIST_FIELDS = ("city", "stage", "value", "start_date", "region")
MAX_LISTED = 8
PARAGRAPH_FIELDS = frozenset(
    {"snapshot", "summary", "pitch", "body", "text", "description", "answer", "content"}
)
DEFAULT_WORDS = (60, 80)
_DESCRIBED_RANGE = re.compile(r"(\d{1,4})\s*(?:–|-|to)\s*(\d{1,4})\s*words", re.IGNORECASE)


def words(text: str) -> int:
    return len(text.split())


def fmt(value: Any, locale: str) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        return f"{value:,.1f}".replace(",", " ")
    if isinstance(value, str):
        return phrases.translate_value(locale, value)
    return str(value)


def _title(row: dict[str, Any]) -> str:
    for key in TITLE_KEYS:
        if row.get(key):
            return str(row[key])
    return ""


def _row_line(row: dict[str, Any], locale: str) -> str:
    details = [
        f"{phrases.label(locale, k)}: {fmt(row[k], locale)}"
        for k in LIST_FIELDS
        if row.get(k) not in (None, "")
    ]
    title = _title(row)
    return f"- {title} ({'; '.join(details)})" if details else f"- {title}"


def _result_lines(result: ToolResult, locale: str) -> list[str]:
    content = result.content
    if result.refused:
        return [phrases.sentence(locale, "refused", tool=result.tool, reason=str(content))]
    if isinstance(content, dict) and isinstance(content.get("rows"), list):
        content = content["rows"]
    if isinstance(content, list):
        rows = [r for r in content if isinstance(r, dict)]
        if not rows:
            return [phrases.sentence(locale, "found_none")]
        lines = [phrases.sentence(locale, "found_n", n=len(rows))]
        lines += [_row_line(r, locale) for r in rows[:MAX_LISTED]]
        if len(rows) > MAX_LISTED:
            lines.append(phrases.sentence(locale, "found_more", n=len(rows) - MAX_LISTED))
        return lines
    if isinstance(content, dict):
        lines = [phrases.sentence(locale, "about", title=_title(content) or result.tool)]
        lines += [
            f"- {phrases.label(locale, k)}: {fmt(v, locale)}"
            for k, v in content.items()
            if isinstance(v, str | int | float) and k not in TITLE_KEYS
        ]
        return lines
    return [str(content)]


def chat_answer(conv: Conversation, directives: Directives) -> str:
    """The final chat answer: each tool result rendered in the directed language."""
    locale = directives.language
    if not conv.results:
        return phrases.sentence(locale, "no_tool")
    lines: list[str] = []
    for result in conv.results:
        lines += _result_lines(result, locale)
    return "\n".join(lines)


# --- structured output ----------------------------------------------------------------------


class _Facts:
    """Facts as the writer needs them, with the few derived ones (contact, role)."""

    def __init__(self, conv: Conversation, locale: str) -> None:
        self.raw = conv.facts
        self.locale = locale

    def get(self, key: str) -> Any:
        return self.raw.get(key)

    def slots(self) -> dict[str, str]:
        slots = {k: fmt(v, self.locale) for k, v in self.raw.items() if not isinstance(v, list)}
        slots.setdefault("title", _title(self.raw))
        slots.setdefault("role", "")
        contact = self.raw.get("contact") or self.raw.get("contact_name")
        contacts = self.raw.get("contacts")
        if not contact and isinstance(contacts, list) and contacts:
            first = contacts[0]
            contact = first.get("name") if isinstance(first, dict) else str(first)
        slots["contact"] = str(contact or self.raw.get("owner") or "")
        return slots


def _safe(template: str, slots: dict[str, str]) -> str | None:
    """TEMPLATE filled from SLOTS, or None when a slot it needs is empty."""
    needed = re.findall(r"\{(\w+)\}", template)
    if any(not slots.get(n) for n in needed):
        return None
    return template.format(**{n: slots[n] for n in needed})


def _sentences(facts: _Facts, directives: Directives) -> list[str]:
    locale = directives.language
    slots = facts.slots()
    table = phrases.SENTENCES.get(locale, phrases.SENTENCES["en"])
    per_field = phrases.FIELD_SENTENCES.get(locale, phrases.FIELD_SENTENCES["en"])
    found = [_safe(table["intro"], slots)]
    found += [_safe(per_field[k], slots) for k in directives.facts_to_write() if k in per_field]
    found.append(_safe(table["role"], slots))
    return [s for s in found if s]


def paragraph(facts: _Facts, directives: Directives, word_range: tuple[int, int]) -> str:
    """A paragraph of facts then filler sentences whose length lands inside WORD_RANGE
    (aiming at its middle); exhaustive directives overshoot on purpose."""
    locale = directives.language
    lo, hi = word_range
    if directives.exhaustive:
        lo, hi = int(hi * 1.5), int(hi * 2.2)
    target = (lo + hi) // 2
    table = phrases.SENTENCES.get(locale, phrases.SENTENCES["en"])
    praise = [table["praise_0"], table["praise_1"]] if directives.persuasive else []
    fillers = [table[f"filler_{i}"] for i in range(6)]
    body = _sentences(facts, directives)
    unique = praise[:1] + body + praise[1:] + fillers
    chosen: list[str] = []
    count = 0
    # Unique sentences first; repeat fillers only when the range cannot be reached without.
    for s in [*unique, *islice(cycle(fillers), 6 * 4)]:
        n = words(s)
        if count + n > hi or (s in chosen and count >= lo):
            continue
        chosen.append(s)
        count += n
        if count >= target:
            break
    return " ".join(chosen)


def _word_range(schema: dict[str, Any], directives: Directives) -> tuple[int, int]:
    if directives.words is not None:
        return directives.words
    match = _DESCRIBED_RANGE.search(str(schema.get("description", "")))
    if match:
        lo, hi = sorted((int(match.group(1)), int(match.group(2))))
        return lo, hi
    return DEFAULT_WORDS


def _key_facts(facts: _Facts, directives: Directives, schema: dict[str, Any]) -> list[str]:
    locale = directives.language
    keys = [*directives.facts_to_write(), "city", "owner", "category"]
    items = [
        f"{phrases.label(locale, k)}: {fmt(facts.get(k), locale)}"
        for k in dict.fromkeys(keys)
        if facts.get(k) not in (None, "")
    ]
    lo = int(schema.get("minItems", 0))
    hi = int(schema.get("maxItems", max(len(items), lo)))
    items = items[:hi]
    while len(items) < lo:
        items.append(phrases.sentence(locale, f"filler_{len(items) % 6}"))
    return items


def _next_step(facts: _Facts, directives: Directives) -> str:
    locale = directives.language
    if directives.next_step:
        concrete = _safe(
            phrases.SENTENCES.get(locale, phrases.SENTENCES["en"])["next_step"], facts.slots()
        )
        if concrete:
            return concrete
    return phrases.sentence(locale, "next_step_vague")


def _string(name: str, schema: dict[str, Any], facts: _Facts, directives: Directives) -> str:
    locale = directives.language
    lowered = name.lower()
    if lowered in PARAGRAPH_FIELDS:
        text = paragraph(facts, directives, _word_range(schema, directives))
    elif lowered in ("headline", "title", "subject"):
        text = _safe(
            phrases.sentence(locale, "headline", title="{title}", stage="{stage}", city="{city}"),
            facts.slots(),
        ) or str(facts.slots().get("title", name))
    elif "next" in lowered or "step" in lowered or "action" in lowered:
        text = _next_step(facts, directives)
    elif lowered in ("language", "locale", "lang"):
        text = locale
    elif facts.get(name) is not None:
        text = fmt(facts.get(name), locale)
    else:
        text = phrases.label(locale, name)
    max_len = schema.get("maxLength")
    if isinstance(max_len, int) and len(text) > max_len:
        text = text[: max_len - 1].rstrip() + "…"
    min_len = int(schema.get("minLength", 0))
    if len(text) < min_len:
        text = text.ljust(min_len, ".")
    return text


def value_for(
    name: str, schema: dict[str, Any], root: dict[str, Any], facts: _Facts, directives: Directives
) -> Any:
    schema = resolve_schema(schema, root)
    if "enum" in schema:
        known = facts.get(name)
        return known if known in schema["enum"] else schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return structured(schema, root, facts, directives)
    if kind == "array":
        items = resolve_schema(schema.get("items", {}), root)
        if items.get("type") == "string":
            return _key_facts(facts, directives, schema)
        known = facts.get(name)
        return known if isinstance(known, list) else []
    if kind == "string":
        return _string(name, schema, facts, directives)
    known = facts.get(name)
    if kind == "integer":
        return int(known) if isinstance(known, int | float) else int(schema.get("minimum", 0))
    if kind == "number":
        return float(known) if isinstance(known, int | float) else float(schema.get("minimum", 0))
    if kind == "boolean":
        return bool(known)
    return known


def structured(
    schema: dict[str, Any], root: dict[str, Any], facts: _Facts, directives: Directives
) -> dict[str, Any]:
    """An object valid against SCHEMA (required fields always, optional ones when known)."""
    required = set(schema.get("required", []))
    out: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        if name not in required and facts.get(name) is None and "default" in prop:
            continue
        out[name] = value_for(name, prop, root, facts, directives)
    return out


def structured_output(
    conv: Conversation, directives: Directives, schema: dict[str, Any]
) -> dict[str, Any]:
    facts = _Facts(conv, directives.language)
    return structured(schema, schema, facts, directives)
