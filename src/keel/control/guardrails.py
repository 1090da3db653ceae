"""Guardrails: named detectors with a mode, grouped per stage, built from an agent's config.

Config (an agent's `guardrails:` mapping; each stage takes a mapping of guardrail name →
options, or a plain list of names for the defaults):

    guardrails:
      input:
        prompt_injection: {mode: block, threshold: 0.6}
      output:
        pii: {mode: redact, kinds: [email, phone, iban, payment_card]}
      tool_output:
        prompt_injection: {mode: redact}
        pii: warn                       # shorthand for {mode: warn}

Stages: `input` (user messages), `output` (the agent's answer), `tool_output` (tool results
before the model sees them). Options every guardrail takes: `mode` (`block` | `redact` |
`warn`; default per guardrail: `prompt_injection` blocks, `pii` redacts, custom ones warn) and
`threshold` (0–1, default 0.5: findings scoring lower are ignored). `pii` also takes `kinds`.

Modes: `block` → the result is `blocked` with `reasons`; `redact` → the result's `value` has
each finding's exact span replaced by `[REDACTED:<kind>]` (a finding without a span cannot be
redacted and blocks instead); `warn` → findings only. All guardrails scan the original text,
so spans never refer to an already-redacted string; overlapping redactions merge.

Values: a string, or JSON-like data (dicts, lists, tuples of strings, numbers, bools, None) as
tool output usually is: every string is scanned (and integers, as their digits — card numbers
arrive as numbers too); mapping keys are not scanned. Finding paths look like
`$.results[0].email`.

Custom guardrails: register a detector, any `(text: str, context: GuardrailContext) ->
Sequence[Finding]` callable, under a name (or a factory that receives the config options and
returns one), then reference the name in config:

    registry = GuardrailRegistry.default()
    registry.register("competitor_names", my_detector)
    guardrails = GuardrailSet.from_config(spec["guardrails"], registry)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Generic, TypeVar

from keel.control.findings import STAGES, Detector, Finding, GuardrailContext, Stage
from keel.control.injection import InjectionDetector
from keel.control.pii import PiiDetector
from keel.errors import InvalidInput, SpecError, SpecProblem

T = TypeVar("T")
DetectorFactory = Callable[[Mapping[str, Any]], Detector]


class Mode(StrEnum):
    BLOCK = "block"
    REDACT = "redact"
    WARN = "warn"


@dataclass(frozen=True)
class Guardrail:
    """A detector with a mode and a score threshold, under a name."""

    name: str
    detector: Detector
    mode: Mode = Mode.WARN
    threshold: float = 0.5

    def scan(self, text: str, context: GuardrailContext, path: str = "$") -> list[Finding]:
        """The detector's findings at or above the threshold, tagged with name and path."""
        found = []
        for f in self.detector(text, context):
            if f.score < self.threshold:
                continue
            span_ok = f.start is None or (f.end is not None and 0 <= f.start < f.end <= len(text))
            if not span_ok:
                raise InvalidInput(
                    f"guardrail {self.name!r} returned a span outside the text", field=self.name
                )
            found.append(replace(f, path=path, guardrail=self.name))
        return found


@dataclass(frozen=True)
class GuardrailResult(Generic[T]):
    """`value` is the input, or its redacted copy; `blocked` means do not deliver it."""

    value: T
    findings: tuple[Finding, ...] = ()
    blocked: bool = False
    redacted: bool = False
    reasons: tuple[str, ...] = ()


@dataclass
class GuardrailRegistry:
    """Guardrail names → factories. `default()` has `pii` and `prompt_injection`."""

    _factories: dict[str, tuple[DetectorFactory, Mode]] = field(default_factory=dict)

    @classmethod
    def default(cls) -> GuardrailRegistry:
        registry = cls()
        registry.register_factory("pii", _pii_factory, default_mode=Mode.REDACT)
        registry.register_factory("prompt_injection", _injection_factory, default_mode=Mode.BLOCK)
        return registry

    def register(
        self,
        name: str,
        detector: Detector,
        *,
        default_mode: Mode = Mode.WARN,
        replace: bool = False,
    ) -> None:
        """Register a detector that takes no options beyond mode and threshold."""

        def factory(options: Mapping[str, Any]) -> Detector:
            if options:
                raise ValueError(f"takes no options besides mode and threshold: {sorted(options)}")
            return detector

        self.register_factory(name, factory, default_mode=default_mode, replace=replace)

    def register_factory(
        self,
        name: str,
        factory: DetectorFactory,
        *,
        default_mode: Mode = Mode.WARN,
        replace: bool = False,
    ) -> None:
        """Register `factory(options) -> detector`; it raises ValueError for bad options."""
        if not name.isidentifier():
            raise InvalidInput(f"guardrail name {name!r} must be an identifier", field="name")
        if name in self._factories and not replace:
            raise InvalidInput(f"guardrail {name!r} is already registered", field="name")
        self._factories[name] = (factory, default_mode)

    def names(self) -> list[str]:
        return sorted(self._factories)

    def build(self, name: str, options: Mapping[str, Any] | str | None = None) -> Guardrail:
        """A configured guardrail; ValueError (naming the option) for bad configuration."""
        if name not in self._factories:
            raise KeyError(name)
        factory, default_mode = self._factories[name]
        opts: dict[str, Any] = (
            {"mode": options} if isinstance(options, str) else dict(options or {})
        )
        mode_value = opts.pop("mode", default_mode)
        try:
            mode = Mode(mode_value)
        except ValueError as exc:
            raise ValueError(f"mode: {mode_value!r} is not one of block, redact, warn") from exc
        threshold = opts.pop("threshold", 0.5)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0 <= threshold <= 1
        ):
            raise ValueError(f"threshold: {threshold!r} must be a number from 0 to 1")
        return Guardrail(name, factory(opts), mode, float(threshold))


def _pii_factory(options: Mapping[str, Any]) -> Detector:
    unknown = set(options) - {"kinds"}
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown option (pii takes kinds)")
    kinds = options.get("kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)
    ):
        raise ValueError("kinds: must be a list of PII kinds")
    try:
        return PiiDetector(kinds)
    except ValueError as exc:
        raise ValueError(f"kinds: {exc}") from exc


def _injection_factory(options: Mapping[str, Any]) -> Detector:
    if options:
        raise ValueError(f"{sorted(options)[0]}: unknown option (prompt_injection takes none)")
    return InjectionDetector()


# --- walking values -----------------------------------------------------------------------


def _strings(value: Any, path: str = "$") -> list[tuple[str, str]]:
    """(path, text) for every scannable leaf."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return []
    if isinstance(value, int):
        return [(path, str(value))]
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for key, item in value.items():
            out += _strings(
                item, f"{path}.{key}" if str(key).isidentifier() else f"{path}[{key!r}]"
            )
        return out
    if isinstance(value, list | tuple):
        return [pair for i, item in enumerate(value) for pair in _strings(item, f"{path}[{i}]")]
    raise InvalidInput(f"cannot scan a {type(value).__name__} at {path}", field=path)


def _redact_text(text: str, findings: Sequence[Finding]) -> str:
    spans = sorted(
        (f.start, f.end, f.kind) for f in findings if f.start is not None and f.end is not None
    )
    merged: list[list[Any]] = []
    for start, end, kind in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, kind])
    parts, last = [], 0
    for start, end, kind in merged:
        parts += [text[last:start], f"[REDACTED:{kind}]"]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _rebuild(value: Any, path: str, replacements: Mapping[str, str]) -> Any:
    if path in replacements:
        return replacements[path]
    if isinstance(value, Mapping):
        return {
            k: _rebuild(
                v, f"{path}.{k}" if str(k).isidentifier() else f"{path}[{k!r}]", replacements
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rebuild(v, f"{path}[{i}]", replacements) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_rebuild(v, f"{path}[{i}]", replacements) for i, v in enumerate(value))
    return value


def _reason(f: Finding) -> str:
    where = "" if f.path == "$" else f" at {f.path}"
    return f"{f.guardrail}: {f.message or f.kind} ({f.rule}, score {f.score:.2f}){where}"


# --- sets ---------------------------------------------------------------------------------


class GuardrailSet:
    """The guardrails of each stage, applied in one pass over a value."""

    def __init__(self, stages: Mapping[Stage, Sequence[Guardrail]] | None = None) -> None:
        self.stages: dict[Stage, tuple[Guardrail, ...]] = {
            stage: tuple((stages or {}).get(stage, ())) for stage in STAGES
        }

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | None,
        registry: GuardrailRegistry | None = None,
        *,
        source: str = "agent.yaml",
    ) -> GuardrailSet:
        """Build from an agent's `guardrails:` mapping; SpecError lists every problem."""
        registry = registry or GuardrailRegistry.default()
        if config is None:
            return cls()
        if not isinstance(config, Mapping):
            raise SpecError([SpecProblem(source, "guardrails", "must be a mapping of stages")])
        problems: list[SpecProblem] = []
        stages: dict[Stage, list[Guardrail]] = {}
        for stage_name, entries in config.items():
            where = f"guardrails.{stage_name}"
            if stage_name not in STAGES:
                problems.append(
                    SpecProblem(source, where, f"unknown stage (one of {', '.join(STAGES)})")
                )
                continue
            stage: Stage = stage_name
            items: list[tuple[str, Any]]
            if isinstance(entries, str):
                items = [(entries, None)]
            elif isinstance(entries, list):
                items = [(e, None) for e in entries]
            elif isinstance(entries, Mapping):
                items = list(entries.items())
            elif entries is None:
                items = []
            else:
                problems.append(
                    SpecProblem(source, where, "expected a list or mapping of guardrails")
                )
                continue
            for name, options in items:
                if not isinstance(name, str) or name not in registry.names():
                    problems.append(
                        SpecProblem(
                            source,
                            f"{where}.{name}",
                            f"unknown guardrail (known: {', '.join(registry.names())})",
                        )
                    )
                    continue
                if options is not None and not isinstance(options, Mapping | str):
                    problems.append(
                        SpecProblem(source, f"{where}.{name}", "options must be a mapping")
                    )
                    continue
                try:
                    stages.setdefault(stage, []).append(registry.build(name, options))
                except ValueError as exc:
                    problems.append(SpecProblem(source, f"{where}.{name}", str(exc)))
        if problems:
            raise SpecError(problems)
        return cls(stages)

    def check(
        self, stage: Stage, value: T, context: GuardrailContext | None = None
    ) -> GuardrailResult[T]:
        """Run the stage's guardrails over `value` (a string or JSON-like data)."""
        guardrails = self.stages.get(stage, ())
        if not guardrails:
            return GuardrailResult(value)
        context = replace(context, stage=stage) if context else GuardrailContext(stage=stage)
        leaves = _strings(value)
        findings: list[Finding] = []
        to_redact: dict[str, list[Finding]] = {}
        blocked_by: list[Finding] = []
        for guardrail in guardrails:
            for path, text in leaves:
                for f in guardrail.scan(text, context, path):
                    findings.append(f)
                    if guardrail.mode is Mode.BLOCK or (
                        guardrail.mode is Mode.REDACT and not f.has_span
                    ):
                        blocked_by.append(f)
                    elif guardrail.mode is Mode.REDACT:
                        to_redact.setdefault(path, []).append(f)
        texts = dict(leaves)
        replacements = {path: _redact_text(texts[path], fs) for path, fs in to_redact.items()}
        new_value = _rebuild(value, "$", replacements) if replacements else value
        reasons = tuple(_reason(f) for f in (blocked_by or findings))
        return GuardrailResult(
            value=new_value,
            findings=tuple(findings),
            blocked=bool(blocked_by),
            redacted=bool(replacements),
            reasons=reasons,
        )

    def check_input(self, value: T, context: GuardrailContext | None = None) -> GuardrailResult[T]:
        return self.check("input", value, context)

    def check_output(self, value: T, context: GuardrailContext | None = None) -> GuardrailResult[T]:
        return self.check("output", value, context)

    def check_tool_output(
        self, value: T, context: GuardrailContext | None = None
    ) -> GuardrailResult[T]:
        return self.check("tool_output", value, context)


__all__ = [
    "DetectorFactory",
    "Guardrail",
    "GuardrailRegistry",
    "GuardrailResult",
    "GuardrailSet",
    "Mode",
]
