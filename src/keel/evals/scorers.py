"""Deterministic scorers: each turns (case, output) into a score in [0, 1] with a reason.

Scorers are Pydantic models, so the `scorers:` list of an agent's `evals:` config *is*
the scorer objects (a discriminated union on `type`) and a config error names the field.
Every scorer has:

- `name` — the metric name in reports (default `type` or `type:field`);
- `field` — a JSONPath subset (`snapshot`, `$.items[0].name`) selecting the part of the
  output to check; omitted means the whole output (a dict is checked as its JSON text);
- `oracle` — a deterministic rule of the output. Oracle metrics feed the gaming tripwire:
  judges going up while an oracle goes down blocks promotion. Default true, false for
  latency and cost (slower is not gaming);
- `blocking` — the runtime may refuse to deliver an output that fails this scorer.

All checks are pass/fail (1.0 or 0.0). A scorer returns `None` when it does not apply to
a case (e.g. `expected_from` points at an `expected` the case does not have); such cases
are left out of that metric for both versions. A failed run scores 0 on every scorer.
"""

from __future__ import annotations

import builtins
import inspect
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Protocol, runtime_checkable

import jsonschema
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_evals.evaluators import Contains, EvaluationReason, Evaluator, EvaluatorContext
from pydantic_evals.otel import SpanTreeRecordingError

from keel.errors import InvalidInput, SpecError, SpecProblem
from keel.evals.dataset import EvalCase, canonical_json
from keel.evals.jsonpath import JsonPath, PathNotFound, parse_path
from keel.evals.language import LANGUAGE_NAMES, detect_language, normalise_language
from keel.evals.paths import inside
from keel.evals.runner import CaseOutput

_WORDS = re.compile(r"\S+")


@dataclass(frozen=True)
class Score:
    """A scorer's verdict on one output: `value` in [0, 1] and why."""

    value: float
    reason: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"score {self.value} is outside [0, 1]")

    @property
    def passed(self) -> bool:
        return self.value >= 1.0


def _pass(ok: bool, reason: str) -> Score:
    return Score(1.0 if ok else 0.0, reason)


def as_text(value: Any) -> str:
    """The text a text scorer sees: strings as-is, anything else as canonical JSON."""
    if isinstance(value, str):
        return value
    return canonical_json(value)


@runtime_checkable
class Scorer(Protocol):
    """What the experiment needs from a scorer (built-in or an adapted pydantic-evals one)."""

    @property
    def name(self) -> str: ...

    @property
    def oracle(self) -> bool: ...

    @property
    def blocking(self) -> bool: ...

    def score(self, case: EvalCase, output: CaseOutput) -> Score | None:
        """Score one output; `None` when the scorer does not apply to this case."""
        ...

    def spec(self) -> dict[str, Any]:
        """A JSON-able description; part of the config hash a gate report carries."""
        ...


class _Missing(Exception):
    """The configured field is absent from the output: the check fails with this reason."""


class ScorerBase(BaseModel, ABC):
    """Common fields and output selection of the built-in scorers."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: str
    label: str | None = Field(default=None, alias="name", min_length=1, max_length=100)
    field: str | None = None
    oracle: bool = True
    blocking: bool = False

    _path: JsonPath | None = PrivateAttr(default=None)

    @field_validator("field")
    @classmethod
    def _field_is_a_path(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                parse_path(v)
            except InvalidInput as e:
                raise ValueError(e.message) from None
        return v

    def model_post_init(self, context: Any) -> None:
        self._path = parse_path(self.field) if self.field is not None else None

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return f"{self.type}:{self.field}" if self.field else self.type

    def spec(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def select(self, output: CaseOutput) -> Any:
        """The value this scorer checks; `_Missing` if the field is absent."""
        value: Any = output.output
        if self._path is None:
            return value
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise _Missing(f"output is plain text, it has no field {self.field!r}") from None
        try:
            return self._path.find(value)
        except PathNotFound as e:
            raise _Missing(f"output has no field {self.field!r} ({e})") from None

    def score(self, case: EvalCase, output: CaseOutput) -> Score | None:
        if output.error is not None:
            return Score(0.0, f"run failed: {output.error}")
        try:
            value = self.select(output) if self.needs_output else None
        except _Missing as e:
            return Score(0.0, str(e))
        return self.check(case, output, value)

    needs_output: ClassVar[bool] = True

    @abstractmethod
    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None: ...


def _resolve_expected(case: EvalCase, ref: str) -> tuple[bool, Any]:
    try:
        return True, parse_path(ref).find(case.document())
    except PathNotFound:
        return False, None


def _validate_ref(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        path = parse_path(v)
    except InvalidInput as e:
        raise ValueError(e.message) from None
    if not path.steps or path.steps[0] not in ("inputs", "expected", "metadata", "id"):
        raise ValueError("must start with inputs, expected, metadata or id (e.g. metadata.locale)")
    return v


class _ExpectsValue(ScorerBase):
    value: Any = None
    expected_from: str | None = None

    _check_ref = field_validator("expected_from")(classmethod(lambda cls, v: _validate_ref(v)))

    @model_validator(mode="after")
    def _value_or_reference(self) -> _ExpectsValue:
        if (self.value is None) == (self.expected_from is None):
            raise ValueError("give exactly one of value or expected_from")
        return self

    def target(self, case: EvalCase) -> tuple[bool, Any]:
        if self.expected_from is None:
            return True, self.value
        return _resolve_expected(case, self.expected_from)


class SchemaScorer(ScorerBase):
    """The output (or field) validates against the agent's Pydantic output model or a JSON schema."""

    type: Literal["schema"] = "schema"
    json_schema: dict[str, Any] | None = None
    json_schema_file: str | None = None

    _model: builtins.type[BaseModel] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _schema_is_valid(self) -> SchemaScorer:
        if self.json_schema is not None and self.json_schema_file is not None:
            raise ValueError("give json_schema or json_schema_file, not both")
        if self.json_schema is not None:
            try:
                jsonschema.Draft202012Validator.check_schema(self.json_schema)
            except jsonschema.SchemaError as e:
                raise ValueError(f"json_schema is not a valid JSON Schema: {e.message}") from None
        return self

    def bind(
        self, *, base_dir: Path | None, output_model: builtins.type[BaseModel] | None
    ) -> SchemaScorer:
        """Resolve `json_schema_file` against the agent folder, or adopt the agent's output model."""
        if self.json_schema_file is not None:
            path = inside(
                base_dir, self.json_schema_file, source="agent.yaml", field="json_schema_file"
            )
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
                jsonschema.Draft202012Validator.check_schema(schema)
            except (OSError, json.JSONDecodeError, jsonschema.SchemaError) as e:
                raise SpecError(
                    [SpecProblem(str(path), "json_schema_file", f"cannot use this schema: {e}")]
                ) from None
            return self.model_copy(update={"json_schema": schema, "json_schema_file": None})
        if self.json_schema is None:
            if output_model is None:
                raise InvalidInput(
                    "the schema scorer needs json_schema, json_schema_file or the agent's output model",
                    field="json_schema",
                )
            bound = self.model_copy()
            bound._model = output_model
            return bound
        return self

    def spec(self) -> dict[str, Any]:
        out = super().spec()
        if self._model is not None:
            out["output_model"] = self._model.__qualname__
            out["output_model_schema"] = self._model.model_json_schema()
        return out

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        if self._model is not None:
            try:
                if isinstance(value, str):
                    self._model.model_validate_json(value)
                else:
                    self._model.model_validate(value)
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(p) for p in first["loc"]) or "(root)"
                return Score(0.0, f"{e.error_count()} schema error(s); {loc}: {first['msg']}")
            return Score(1.0, f"valid {self._model.__name__}")
        if self.json_schema is None:
            raise InvalidInput("schema scorer used before bind()", field="json_schema")
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                return Score(0.0, f"output is not JSON: {e.msg}")
        errors = sorted(
            jsonschema.Draft202012Validator(self.json_schema).iter_errors(value),
            key=lambda err: list(err.absolute_path),
        )
        if errors:
            where = "$" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path
            )
            return Score(0.0, f"{len(errors)} schema error(s); {where}: {errors[0].message}")
        return Score(1.0, "valid against the JSON schema")


class EqualsScorer(_ExpectsValue):
    """The field equals a value (or the case's `expected_from`)."""

    type: Literal["equals"] = "equals"

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        found, target = self.target(case)
        if not found:
            return None
        if value == target:
            return Score(1.0, f"equals {target!r}")
        return Score(0.0, f"{_short(value)} != {_short(target)}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ContainsScorer(_ExpectsValue):
    """The field contains a value: substring for text, item for lists, sub-dict for dicts.

    The containment rules and reasons are pydantic-evals' `Contains` evaluator.
    """

    type: Literal["contains"] = "contains"
    case_sensitive: bool = True

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        found, target = self.target(case)
        if not found:
            return None
        evaluator = Contains(value=target, case_sensitive=self.case_sensitive)
        verdict = evaluator.evaluate(_evaluator_context(case, output, value))
        ok = bool(verdict.value)
        return Score(1.0 if ok else 0.0, verdict.reason or f"contains {_short(target)}")


class RegexScorer(ScorerBase):
    """The text matches (`must_match: true`) or does not match a regular expression."""

    type: Literal["regex"] = "regex"
    pattern: str
    must_match: bool = True
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"invalid regular expression: {e}") from None
        return v

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        flags = re.IGNORECASE if self.ignore_case else 0
        match = re.search(self.pattern, as_text(value), flags)
        if self.must_match:
            return _pass(
                match is not None,
                f"matches at {match.start()}" if match else f"no match for /{self.pattern}/",
            )
        return _pass(
            match is None,
            "no forbidden match" if match is None else f"forbidden match {match.group(0)!r}",
        )


class _RangeScorer(ScorerBase):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _range(self) -> _RangeScorer:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self

    def _in_range(self, n: int, unit: str) -> Score:
        lo = self.min if self.min is not None else 0
        hi = self.max
        ok = n >= lo and (hi is None or n <= hi)
        bounds = f"[{lo}, {hi if hi is not None else '∞'}]"
        return _pass(ok, f"{n} {unit} {'within' if ok else 'outside'} {bounds}")


class WordCountScorer(_RangeScorer):
    """The number of whitespace-separated words is within [min, max]."""

    type: Literal["word_count"] = "word_count"

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        return self._in_range(len(_WORDS.findall(as_text(value))), "words")


class LengthScorer(_RangeScorer):
    """The number of characters is within [min, max]."""

    type: Literal["length"] = "length"

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        return self._in_range(len(as_text(value)), "characters")


class JsonPathScorer(ScorerBase):
    """Checks on the value at `path`: it exists, and optionally equals / is one of / is in range."""

    type: Literal["json_path"] = "json_path"
    path: str
    equals: Any = None
    expected_from: str | None = None
    one_of: list[Any] | None = None
    min: float | None = None
    max: float | None = None

    needs_output: ClassVar[bool] = False

    _check_ref = field_validator("expected_from")(classmethod(lambda cls, v: _validate_ref(v)))

    @field_validator("path")
    @classmethod
    def _path_parses(cls, v: str) -> str:
        try:
            parse_path(v)
        except InvalidInput as e:
            raise ValueError(e.message) from None
        return v

    @property
    def name(self) -> str:
        return self.label or f"json_path:{self.path}"

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        doc: Any = output.output
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                return Score(0.0, "output is not JSON")
        try:
            found = parse_path(self.path).find(doc)
        except PathNotFound as e:
            return Score(0.0, str(e))
        failures: list[str] = []
        if self.expected_from is not None:
            ok, target = _resolve_expected(case, self.expected_from)
            if not ok:
                return None
            if found != target:
                failures.append(f"{_short(found)} != {_short(target)}")
        if self.equals is not None and found != self.equals:
            failures.append(f"{_short(found)} != {_short(self.equals)}")
        if self.one_of is not None and found not in self.one_of:
            failures.append(f"{_short(found)} not one of {_short(self.one_of)}")
        if self.min is not None or self.max is not None:
            if isinstance(found, bool) or not isinstance(found, int | float):
                failures.append(f"{_short(found)} is not a number")
            else:
                if self.min is not None and found < self.min:
                    failures.append(f"{found} < min {self.min}")
                if self.max is not None and found > self.max:
                    failures.append(f"{found} > max {self.max}")
        if failures:
            return Score(0.0, f"{self.path}: " + "; ".join(failures))
        return Score(1.0, f"{self.path} = {_short(found)}")


class LanguageScorer(ScorerBase):
    """The text is written in the expected language (offline detector, `keel.evals.language`)."""

    type: Literal["language"] = "language"
    expected: str | None = None
    expected_from: str | None = "metadata.locale"

    _check_ref = field_validator("expected_from")(classmethod(lambda cls, v: _validate_ref(v)))

    @field_validator("expected")
    @classmethod
    def _supported(cls, v: str | None) -> str | None:
        if v is not None and normalise_language(v) is None:
            raise ValueError(f"unsupported language {v!r}; supported: {', '.join(LANGUAGE_NAMES)}")
        return v

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        if self.expected is not None:
            want: str | None = normalise_language(self.expected)
        else:
            assert self.expected_from is not None
            found, raw = _resolve_expected(case, self.expected_from)
            if not found or not isinstance(raw, str):
                return None
            want = normalise_language(raw)
            if want is None:
                return None
        guess = detect_language(as_text(value))
        if guess.language is None:
            return Score(0.0, f"too little text to tell the language (expected {want})")
        return _pass(
            guess.language == want,
            f"detected {guess.language} (confidence {guess.confidence:.2f}), expected {want}",
        )


class LatencyScorer(ScorerBase):
    """The run took at most `max_ms` milliseconds."""

    type: Literal["latency"] = "latency"
    max_ms: float = Field(gt=0)
    oracle: bool = False
    needs_output: ClassVar[bool] = False

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        ok = output.latency_ms <= self.max_ms
        return _pass(ok, f"{output.latency_ms:.0f} ms {'≤' if ok else '>'} {self.max_ms:.0f} ms")


class CostScorer(ScorerBase):
    """The run cost at most `max_usd`."""

    type: Literal["cost"] = "cost"
    max_usd: float = Field(gt=0)
    oracle: bool = False
    needs_output: ClassVar[bool] = False

    def check(self, case: EvalCase, output: CaseOutput, value: Any) -> Score | None:
        ok = output.cost_usd <= self.max_usd
        return _pass(ok, f"${output.cost_usd:.6f} {'≤' if ok else '>'} ${self.max_usd:.6f}")


ScorerSpec = Annotated[
    SchemaScorer
    | EqualsScorer
    | ContainsScorer
    | RegexScorer
    | WordCountScorer
    | LengthScorer
    | JsonPathScorer
    | LanguageScorer
    | LatencyScorer
    | CostScorer,
    Field(discriminator="type"),
]
"""One entry of the `scorers:` list, chosen by its `type`."""

SCORER_TYPES = (
    "schema",
    "equals",
    "contains",
    "regex",
    "word_count",
    "length",
    "json_path",
    "language",
    "latency",
    "cost",
)


def _evaluator_context(
    case: EvalCase, output: CaseOutput, value: Any
) -> EvaluatorContext[Any, Any, Any]:
    return EvaluatorContext(
        name=case.id,
        inputs=case.inputs,
        metadata=case.metadata,
        expected_output=case.expected,
        output=value,
        duration=output.latency_ms / 1000.0,
        _span_tree=SpanTreeRecordingError("Keel scorers run outside a traced task"),
        attributes={},
        metrics={},
    )


class EvaluatorScorer:
    """Any synchronous pydantic-evals `Evaluator` used as a Keel scorer.

    bool results become 1/0, numbers must already lie in [0, 1], an `EvaluationReason`
    keeps its reason; an evaluator returning a mapping needs `key` to pick one result.
    """

    def __init__(
        self,
        evaluator: Evaluator[Any, Any, Any],
        *,
        name: str | None = None,
        field: str | None = None,
        key: str | None = None,
        oracle: bool = True,
        blocking: bool = False,
    ) -> None:
        if inspect.iscoroutinefunction(evaluator.evaluate):
            raise InvalidInput(
                "only synchronous evaluators can be scorers; use a judge panel for model-graded checks",
                field="evaluator",
            )
        self.evaluator = evaluator
        self.name = name or evaluator.get_default_evaluation_name()
        self.key = key
        self.oracle = oracle
        self.blocking = blocking
        self._path = parse_path(field) if field is not None else None
        self.field = field

    def spec(self) -> dict[str, Any]:
        return {
            "type": "pydantic_evals",
            "name": self.name,
            "evaluator": repr(self.evaluator),
            "field": self.field,
            "key": self.key,
            "oracle": self.oracle,
        }

    def score(self, case: EvalCase, output: CaseOutput) -> Score | None:
        if output.error is not None:
            return Score(0.0, f"run failed: {output.error}")
        value: Any = output.output
        if self._path is not None:
            try:
                value = self._path.find(value)
            except PathNotFound as e:
                return Score(0.0, str(e))
        result: Any = self.evaluator.evaluate_sync(_evaluator_context(case, output, value))
        if isinstance(result, dict):
            if self.key is None or self.key not in result:
                raise InvalidInput(
                    f"evaluator {self.name} returned {sorted(result)}; choose one with key=",
                    field="key",
                )
            result = result[self.key]
        reason = ""
        if isinstance(result, EvaluationReason):
            reason = result.reason or ""
            result = result.value
        if isinstance(result, bool):
            return Score(1.0 if result else 0.0, reason or ("passed" if result else "failed"))
        if isinstance(result, int | float) and 0.0 <= float(result) <= 1.0:
            return Score(float(result), reason or f"score {float(result):.3f}")
        raise InvalidInput(
            f"evaluator {self.name} returned {result!r}; a scorer needs a bool or a number in [0, 1]",
            field="evaluator",
        )


def bind_scorers(
    scorers: Sequence[Scorer],
    *,
    base_dir: Path | None = None,
    output_model: type[BaseModel] | None = None,
) -> list[Scorer]:
    """Resolve what configuration alone cannot (schema files, the agent's output model) and
    check that metric names are unique."""
    bound: list[Scorer] = []
    for s in scorers:
        if isinstance(s, SchemaScorer):
            s = s.bind(base_dir=base_dir, output_model=output_model)
        bound.append(s)
    seen: set[str] = set()
    for s in bound:
        if s.name in seen:
            raise InvalidInput(
                f"two scorers are both named {s.name!r}; give one a name", field="name"
            )
        seen.add(s.name)
    return bound


@dataclass(frozen=True)
class BlockingFailure:
    """A blocking scorer that an output failed: delivery should stop, saying why."""

    scorer: str
    reason: str


def blocking_failures(
    scorers: Sequence[Scorer], case: EvalCase, output: CaseOutput
) -> list[BlockingFailure]:
    """Run the blocking scorers on one output (the runtime's post-generation check)."""
    out = []
    for s in scorers:
        if not s.blocking:
            continue
        result = s.score(case, output)
        if result is not None and not result.passed:
            out.append(BlockingFailure(s.name, result.reason))
    return out
