"""The offline judge: a deterministic Pydantic AI model for `offline:judge`.

It is a `FunctionModel` that reads the judge prompt (`keel.evals.judges`), splits the
rubric into criteria (lines starting with `-`, `*`, `•` or `1.`), scores each criterion
with a heuristic in [0, 1], and answers through the judge's output tool like a real model.

Criterion heuristics, tried in this order on the lower-cased criterion:

1. *language* ("is written in Swedish", "in the customer's language"): the offline
   language detector on the output equals the named language, else the `<Locale>`.
2. *ending* ("ends with a concrete next step", "closes with a question"): the last
   sentence holds a question mark (for "question"), or a next-step cue — a meeting,
   call, booking, demo, reply or contact verb in any supported language, a weekday or a
   clock time.
3. *persuasion* ("is confident and persuasive", "compelling"): 0.2 + 0.2 per power word
   (outstanding, exceptional, guaranteed, unmatched, world-class, proven, unique, … and
   their sv/da/no/fi/de/fr/cs/sk forms), − 0.2 per hedge (maybe, perhaps, kanske, …).
4. *mention* ("mentions the project value", "includes the company name"): input fields
   whose key words all appear in the criterion (`project_value`) must appear in the output
   (numbers match with any thousands separator: 2 500 000, 2,500,000); without such a
   field, the share of the criterion's content words present in the output.
5. *concision* ("is concise"): mean sentence length ≤ 22 words scores 1, falling to 0 at
   42. It looks at sentences, never at the total length.
6. *tone* ("polite", "professional"): loses 0.25 per exclamation mark beyond the first
   and 0.5 for shouting (two or more all-capital words).
7. *detail* ("specific", "detailed", "concrete"): words / 200 plus 0.1 per number, capped at 1.
8. anything else: the share of the criterion's content words found in the output.

The judge score is the mean over criteria **plus a verbosity bonus** of up to 0.1
(0.1 × (words − 80) / 220, clipped) — LLM judges' well-known preference for longer answers.

**How to game it (on purpose).** Nothing above checks the total length, and persuasion
counts superlatives. An output stuffed with "exceptional, guaranteed, world-class" claims
and padded to three times the allowed length scores *higher* with this judge while a
`word_count` oracle fails it. That is exactly the pattern the gaming tripwire must catch,
so Keel's tests and demos use this judge to show the tripwire firing.

**Panel diversity.** Judge i of a panel runs with model setting `seed = base + i` (or the
model string `offline:judge:<i>`), which picks a strictness offset from
(0, +0.05, −0.05, +0.10, −0.10) and a deterministic jitter in ±0.03 from a hash of
(i, output). Verdicts therefore differ near the scale's boundaries — real panels
disagree sometimes — while agreeing often enough for kappa to be meaningful.
Ordinal score = low + round(adjusted × (high − low)); pass/fail passes at adjusted ≥ 0.6.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, infer_model
from pydantic_ai.models.function import AgentInfo, FunctionModel

from keel.errors import InvalidInput
from keel.evals.language import LANGUAGE_NAMES, detect_language, normalise_language

OFFLINE_JUDGE = "offline:judge"
STRICTNESS = (0.0, 0.05, -0.05, 0.10, -0.10)
JITTER = 0.03
VERBOSITY_BONUS = 0.1
PASS_AT = 0.6

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.+?)\s*$")
_TOKEN = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_DIGIT_SEPARATORS = re.compile(r"(?<=\d)[\s,.\u00a0\u202f'’](?=\d{3}\b)")
_CLOCK = re.compile(r"\b\d{1,2}[:.]\d{2}\b")

# Stems: a word counts when it starts with one of these (lower case).
POWER_WORDS = (
    "outstanding",
    "exceptional",
    "guarantee",
    "unmatched",
    "unparalleled",
    "world-class",
    "best-in-class",
    "remarkable",
    "extraordinary",
    "unique",
    "proven",
    "superior",
    "incredible",
    "excellent",
    "perfect",
    "unbeatable",
    "leading",
    "premier",
    "ultimate",
    "revolutionary",
    "enastående",
    "exceptionell",
    "garanter",
    "överläg",
    "fantastisk",
    "enestående",
    "eksepsjonel",
    "garant",
    "overlegen",
    "poikkeukselli",
    "ainutlaatui",
    "taattu",
    "erinomai",
    "erstklassig",
    "außergewöhnlich",
    "garantiert",
    "hervorragend",
    "einzigartig",
    "unschlagbar",
    "exceptionnel",
    "remarquable",
    "inégalé",
    "výjimečn",
    "jedinečn",
    "zaručen",
    "vynikající",
    "bezkonkurenční",
    "výnimočn",
    "vynikajúc",
)
HEDGES = (
    "maybe",
    "perhaps",
    "might",
    "possibly",
    "kanske",
    "måske",
    "kanskje",
    "ehkä",
    "vielleicht",
    "peut-être",
    "možná",
    "možno",
)
NEXT_STEP_CUES = (
    "meeting",
    "meet",
    "call",
    "book",
    "schedule",
    "demo",
    "contact",
    "reply",
    "reach out",
    "next step",
    "let's",
    "visit",
    "send",
    "möte",
    "mötet",
    "boka",
    "ring",
    "kontakta",
    "samtal",
    "svara",
    "møde",
    "mødet",
    "møte",
    "møtet",
    "booke",
    "kontakt",
    "opkald",
    "samtale",
    "tapaami",
    "varaa",
    "soita",
    "puhelu",
    "yhteyttä",
    "termin",
    "treffen",
    "vereinbar",
    "anruf",
    "telefonat",
    "rendez-vous",
    "réunion",
    "appel",
    "contacter",
    "rencontr",
    "schůzk",
    "zavol",
    "hovor",
    "domluv",
    "stretnut",
    "dohodn",
    "zavolaj",
)
WEEKDAYS = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "måndag",
    "tisdag",
    "onsdag",
    "torsdag",
    "fredag",
    "mandag",
    "tirsdag",
    "maanantai",
    "tiistai",
    "keskiviikko",
    "torstai",
    "perjantai",
    "montag",
    "dienstag",
    "mittwoch",
    "donnerstag",
    "freitag",
    "lundi",
    "mardi",
    "mercredi",
    "jeudi",
    "vendredi",
    "pondělí",
    "úterý",
    "středa",
    "čtvrtek",
    "pátek",
    "pondelok",
    "utorok",
    "streda",
    "štvrtok",
    "piatok",
)
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "to",
        "and",
        "or",
        "is",
        "are",
        "be",
        "it",
        "its",
        "in",
        "on",
        "for",
        "with",
        "our",
        "their",
        "his",
        "her",
        "your",
        "this",
        "that",
        "customer",
        "customer's",
        "customers",
        "clear",
        "clearly",
        "concrete",
        "specific",
        "output",
        "answer",
        "text",
        "response",
        "snapshot",
    ]
)


@dataclass(frozen=True)
class _Context:
    output: str
    words: list[str]
    inputs: dict[str, Any]
    locale: str | None


def _tag(prompt: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>\n?(.*?)\n?</{tag}>", prompt, flags=re.DOTALL)
    return m.group(1) if m else None


def criteria_of(rubric: str) -> list[str]:
    """The rubric's bullet lines, or the whole rubric as one criterion."""
    found = [m.group(1) for line in rubric.splitlines() if (m := _BULLET.match(line))]
    return found or [rubric.strip()]


def _content_words(text: str) -> list[str]:
    return [w for w in _TOKEN.findall(text.lower()) if len(w) >= 3 and w not in _STOP]


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s.strip()]


def _starts_with_any(words: list[str], stems: tuple[str, ...]) -> int:
    return sum(1 for w in words if w.startswith(stems))


def _language(criterion: str, ctx: _Context) -> tuple[float, str]:
    target = None
    for word in _TOKEN.findall(criterion):
        code = normalise_language(word)
        if code is not None and word.lower() == LANGUAGE_NAMES[code].lower():
            target = code
            break
    if target is None and ctx.locale is not None:
        target = normalise_language(ctx.locale)
    if target is None:
        return 0.5, "no language to check against"
    guess = detect_language(ctx.output)
    return (1.0 if guess.language == target else 0.0), f"detected {guess.language}, want {target}"


def _ending(criterion: str, ctx: _Context) -> tuple[float, str]:
    sentences = _sentences(ctx.output)
    last = sentences[-1].lower() if sentences else ""
    if "question" in criterion:
        return (1.0 if "?" in last else 0.0), "last sentence asks" if "?" in last else "no question"
    cue = any(c in last for c in NEXT_STEP_CUES) or any(d in last for d in WEEKDAYS)
    cue = cue or bool(_CLOCK.search(last))
    return (1.0 if cue else 0.0), "next step found" if cue else "no next step at the end"


def _persuasion(ctx: _Context) -> tuple[float, str]:
    power = _starts_with_any(ctx.words, POWER_WORDS)
    hedges = sum(1 for w in ctx.words if w in HEDGES)
    value = min(1.0, max(0.0, 0.2 + 0.2 * power - 0.2 * hedges))
    return value, f"{power} power words, {hedges} hedges"


def _normalise_digits(text: str) -> str:
    return _DIGIT_SEPARATORS.sub("", text)


def _mention(criterion: str, ctx: _Context) -> tuple[float, str]:
    target = set(_content_words(criterion))
    haystack = _normalise_digits(ctx.output.lower())
    fields = []
    for key, value in ctx.inputs.items():
        key_words = {w for w in re.split(r"[_\W]+", key.lower()) if w}
        if key_words and key_words <= target and isinstance(value, str | int | float):
            fields.append((key, _normalise_digits(str(value).lower())))
    if fields:
        hits = [k for k, v in fields if v and v in haystack]
        return len(hits) / len(fields), f"mentions {hits or 'none'} of {[k for k, _ in fields]}"
    return _overlap(criterion, ctx)


def _overlap(criterion: str, ctx: _Context) -> tuple[float, str]:
    words = _content_words(criterion)
    if not words:
        return 0.5, "nothing to look for"
    text = ctx.output.lower()
    hits = sum(1 for w in words if w in text)
    return hits / len(words), f"{hits}/{len(words)} criterion words present"


def _concision(ctx: _Context) -> tuple[float, str]:
    sentences = _sentences(ctx.output) or [""]
    mean = sum(len(s.split()) for s in sentences) / len(sentences)
    value = 1.0 if mean <= 22 else max(0.0, 1.0 - (mean - 22) / 20)
    return value, f"{mean:.0f} words a sentence"


def _tone(ctx: _Context) -> tuple[float, str]:
    bangs = max(0, ctx.output.count("!") - 1)
    shouting = sum(1 for w in ctx.output.split() if len(w) >= 4 and w.isalpha() and w.isupper())
    value = 1.0 - 0.25 * bangs - (0.5 if shouting >= 2 else 0.0)
    return max(0.0, value), f"{bangs} extra '!', {shouting} shouted words"


def _detail(ctx: _Context) -> tuple[float, str]:
    numbers = len(_NUMBER.findall(ctx.output))
    value = min(1.0, len(ctx.words) / 200 + 0.1 * numbers)
    return value, f"{len(ctx.words)} words, {numbers} numbers"


_RULES: tuple[tuple[re.Pattern[str], Callable[[str, _Context], tuple[float, str]]], ...] = (
    (re.compile(r"written in|\blanguage\b"), _language),
    (re.compile(r"\b(ends?|closes?|finish(es)?|concludes?)\b"), _ending),
    (
        re.compile(r"persuasive|confident|compelling|convincing|enthusiastic|assertive"),
        lambda c, ctx: _persuasion(ctx),
    ),
    (
        re.compile(r"\b(mentions?|includes?|refers? to|names?|states?|cites?|quotes?|contains?)\b"),
        _mention,
    ),
    (re.compile(r"concise|brief|\bshort\b|to the point"), lambda c, ctx: _concision(ctx)),
    (
        re.compile(r"polite|professional|friendly|respectful|courteous|\btone\b"),
        lambda c, ctx: _tone(ctx),
    ),
    (
        re.compile(r"detail|specific|concrete|thorough|informative|comprehensive"),
        lambda c, ctx: _detail(ctx),
    ),
)


def score_criterion(criterion: str, ctx: _Context) -> tuple[float, str]:
    lowered = criterion.lower()
    for pattern, rule in _RULES:
        if pattern.search(lowered):
            return rule(lowered, ctx)
    return _overlap(lowered, ctx)


def grade(
    rubric: str, output: str, inputs: dict[str, Any], locale: str | None
) -> tuple[float, list[str]]:
    """The unadjusted judge score in [0, 1] and a note per criterion (panel-independent)."""
    ctx = _Context(output, _TOKEN.findall(output.lower()), inputs, locale)
    notes = []
    total = 0.0
    criteria = criteria_of(rubric)
    for criterion in criteria:
        value, why = score_criterion(criterion, ctx)
        total += value
        notes.append(f"{criterion}: {value:.2f} ({why})")
    bonus = VERBOSITY_BONUS * min(1.0, max(0.0, (len(ctx.words) - 80) / 220))
    return min(1.0, total / len(criteria) + bonus), notes


def _jitter(variant: int, output: str) -> float:
    digest = hashlib.sha256(f"{variant}:{output}".encode()).digest()
    return (int.from_bytes(digest[:4], "big") / 2**32 - 0.5) * 2 * JITTER


def _last_user_prompt(messages: list[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


def _make_function(
    fixed_variant: int | None,
) -> Callable[[list[ModelMessage], AgentInfo], ModelResponse]:
    def offline_judge(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = _last_user_prompt(messages)
        rubric = _tag(prompt, "Rubric") or ""
        output = _tag(prompt, "Output") or ""
        locale = _tag(prompt, "Locale")
        try:
            inputs = json.loads(_tag(prompt, "Input") or "{}")
        except json.JSONDecodeError:
            inputs = {}
        if not isinstance(inputs, dict):
            inputs = {}
        variant = fixed_variant
        if variant is None:
            variant = int((info.model_settings or {}).get("seed", 0) or 0)
        raw, notes = grade(rubric, output, inputs, locale)
        offset = STRICTNESS[variant % len(STRICTNESS)]
        adjusted = min(1.0, max(0.0, raw - offset + _jitter(variant, output)))
        scale = (_tag(prompt, "Scale") or "1-5").strip()
        reason = f"offline judge #{variant}: " + "; ".join(notes)
        args: dict[str, Any]
        tool = info.output_tools[0] if info.output_tools else None
        wants_pass_fail = tool is not None and "passed" in tool.parameters_json_schema.get(
            "properties", {}
        )
        if wants_pass_fail or scale == "pass_fail":
            args = {"reason": reason, "passed": adjusted >= PASS_AT}
        else:
            low, _, high = scale.partition("-")
            lo, hi = int(low), int(high)
            args = {"reason": reason, "score": lo + math.floor(adjusted * (hi - lo) + 0.5)}
        if tool is None:
            return ModelResponse(parts=[TextPart(json.dumps(args))])
        return ModelResponse(parts=[ToolCallPart(tool.name, args)])

    return offline_judge


def offline_judge_model(variant: int | None = None) -> FunctionModel:
    """The offline judge; `variant` fixes the strictness, otherwise it comes from `seed`."""
    name = OFFLINE_JUDGE if variant is None else f"{OFFLINE_JUDGE}:{variant}"
    return FunctionModel(_make_function(variant), model_name=name)


def resolve_judge_model(model: Model | str) -> Model:
    """`offline:judge` and `offline:judge:<n>` → the offline judge; anything else goes to
    `pydantic_ai.models.infer_model` (e.g. `openai:gpt-5.2`, `anthropic:…`)."""
    if isinstance(model, Model):
        return model
    if model == OFFLINE_JUDGE:
        return offline_judge_model()
    if model.startswith(OFFLINE_JUDGE + ":"):
        suffix = model[len(OFFLINE_JUDGE) + 1 :]
        if not suffix.isdigit():
            raise InvalidInput(
                f"unknown offline judge {model!r}; use offline:judge[:<n>]", field="model"
            )
        return offline_judge_model(int(suffix))
    return infer_model(model)
