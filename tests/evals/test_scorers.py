from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter
from pydantic_evals.evaluators import (
    Contains,
    EvaluationReason,
    Evaluator,
    EvaluatorContext,
    IsInstance,
)

from keel.errors import InvalidInput, SpecError
from keel.evals.dataset import EvalCase
from keel.evals.runner import CaseOutput
from keel.evals.scorers import (
    EvaluatorScorer,
    Scorer,
    ScorerSpec,
    bind_scorers,
    blocking_failures,
)

from .language_samples import SNAPSHOTS

SPECS: TypeAdapter[list[Any]] = TypeAdapter(list[ScorerSpec])
CASE = EvalCase(
    id="c1",
    inputs={"company": "Acme", "project_value": 48_000_000},
    expected={"snapshot": "Acme builds", "tier": "gold"},
    metadata={"locale": "sv"},
)


def one(spec: dict[str, Any]) -> Scorer:
    return bind_scorers(SPECS.validate_python([spec]))[0]


def out(value: Any = None, **kw: Any) -> CaseOutput:
    return CaseOutput(output=value, **kw)


class Card(BaseModel):
    snapshot: str
    tier: str


def test_schema_against_the_agents_output_model() -> None:
    s = bind_scorers(SPECS.validate_python([{"type": "schema"}]), output_model=Card)[0]
    assert s.score(CASE, out({"snapshot": "x", "tier": "gold"})).value == 1.0
    bad = s.score(CASE, out({"snapshot": "x"}))
    assert bad.value == 0.0 and "tier" in bad.reason
    assert s.score(CASE, out('{"snapshot": "x", "tier": "t"}')).value == 1.0


def test_schema_against_a_json_schema_file(tmp_path: Path) -> None:
    schema = {
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"type": "integer", "minimum": 0}},
    }
    (tmp_path / "out.schema.json").write_text(json.dumps(schema))
    s = bind_scorers(
        SPECS.validate_python([{"type": "schema", "json_schema_file": "out.schema.json"}]),
        base_dir=tmp_path,
    )[0]
    assert s.score(CASE, out({"n": 3})).value == 1.0
    bad = s.score(CASE, out({"n": -1}))
    assert bad.value == 0.0 and "$.n" in bad.reason
    assert s.score(CASE, out("not json")).value == 0.0


def test_schema_needs_some_schema() -> None:
    with pytest.raises(InvalidInput, match="output model"):
        bind_scorers(SPECS.validate_python([{"type": "schema"}]))
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        SPECS.validate_python([{"type": "schema", "json_schema": {"type": "nonsense"}}])


def test_a_missing_schema_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"missing\.json"):
        bind_scorers(
            SPECS.validate_python([{"type": "schema", "json_schema_file": "missing.json"}]),
            base_dir=tmp_path,
        )


def test_equals_a_value_or_the_cases_expected() -> None:
    s = one({"type": "equals", "field": "tier", "value": "gold"})
    assert s.score(CASE, out({"tier": "gold"})).value == 1.0
    assert s.score(CASE, out({"tier": "silver"})).reason == "'silver' != 'gold'"
    ref = one(
        {"type": "equals", "name": "tier_ok", "field": "tier", "expected_from": "expected.tier"}
    )
    assert ref.name == "tier_ok"
    assert ref.score(CASE, out({"tier": "gold"})).value == 1.0
    no_expected = EvalCase(id="x", inputs={})
    assert ref.score(no_expected, out({"tier": "gold"})) is None  # not applicable


def test_contains_uses_pydantic_evals_semantics() -> None:
    s = one({"type": "contains", "field": "snapshot", "value": "acme", "case_sensitive": False})
    assert s.score(CASE, out({"snapshot": "ACME is great"})).value == 1.0
    miss = s.score(CASE, out({"snapshot": "Beta"}))
    assert miss.value == 0.0 and "does not contain" in miss.reason
    sub = one({"type": "contains", "value": {"tier": "gold"}})
    assert sub.score(CASE, out({"tier": "gold", "x": 1})).value == 1.0
    assert sub.score(CASE, out({"tier": "bronze"})).value == 0.0


def test_regex_must_and_must_not_match() -> None:
    must = one({"type": "regex", "field": "snapshot", "pattern": r"\d{2} MSEK"})
    assert must.score(CASE, out({"snapshot": "worth 48 MSEK"})).value == 1.0
    assert must.score(CASE, out({"snapshot": "worth a lot"})).value == 0.0
    never = one(
        {
            "type": "regex",
            "field": "snapshot",
            "pattern": "guarantee",
            "must_match": False,
            "ignore_case": True,
        }
    )
    bad = never.score(CASE, out({"snapshot": "We GUARANTEE it"}))
    assert bad.value == 0.0 and "GUARANTEE" in bad.reason


def test_word_count_and_length_ranges() -> None:
    words = one({"type": "word_count", "field": "snapshot", "min": 3, "max": 5})
    assert words.score(CASE, out({"snapshot": "one two three"})).value == 1.0
    assert words.score(CASE, out({"snapshot": "one two"})).reason == "2 words outside [3, 5]"
    assert words.score(CASE, out({"snapshot": "a b c d e f"})).value == 0.0
    length = one({"type": "length", "max": 5})
    assert length.score(CASE, out("12345")).value == 1.0
    assert length.score(CASE, out("123456")).reason == "6 characters outside [0, 5]"


def test_json_path_checks() -> None:
    s = one({"type": "json_path", "path": "$.lines[0].amount", "min": 0, "max": 100})
    assert s.name == "json_path:$.lines[0].amount"
    assert s.score(CASE, out({"lines": [{"amount": 42}]})).value == 1.0
    assert "> max" in s.score(CASE, out({"lines": [{"amount": 420}]})).reason
    assert s.score(CASE, out({"lines": []})).value == 0.0
    assert s.score(CASE, out({"lines": [{"amount": "42"}]})).reason.endswith("is not a number")
    choice = one({"type": "json_path", "path": "tier", "one_of": ["gold", "silver"]})
    assert choice.score(CASE, out({"tier": "gold"})).value == 1.0
    assert choice.score(CASE, out('{"tier": "iron"}')).value == 0.0
    ref = one({"type": "json_path", "path": "tier", "expected_from": "expected.tier"})
    assert ref.score(CASE, out({"tier": "gold"})).value == 1.0


def test_language_against_the_case_locale_or_a_fixed_language() -> None:
    s = one({"type": "language", "field": "snapshot"})
    assert s.score(CASE, out({"snapshot": SNAPSHOTS["sv"]})).value == 1.0
    wrong = s.score(CASE, out({"snapshot": SNAPSHOTS["no"]}))
    assert wrong.value == 0.0 and "detected no" in wrong.reason
    fixed = one({"type": "language", "expected": "cs-CZ"})
    assert fixed.score(CASE, out(SNAPSHOTS["cs"])).value == 1.0
    assert fixed.score(CASE, out(SNAPSHOTS["sk"])).value == 0.0
    assert s.score(EvalCase(id="x", inputs={}), out({"snapshot": "hej"})) is None
    with pytest.raises(ValueError, match="unsupported language"):
        SPECS.validate_python([{"type": "language", "expected": "pt"}])


def test_latency_and_cost_thresholds_are_not_oracles_by_default() -> None:
    lat = one({"type": "latency", "max_ms": 500})
    cost = one({"type": "cost", "max_usd": 0.01})
    assert not lat.oracle and not cost.oracle
    assert lat.score(CASE, out("x", latency_ms=499)).value == 1.0
    assert lat.score(CASE, out("x", latency_ms=501)).value == 0.0
    assert cost.score(CASE, out("x", cost_usd=0.02)).value == 0.0


def test_a_missing_field_or_a_failed_run_scores_zero_with_the_reason() -> None:
    s = one({"type": "word_count", "field": "snapshot", "min": 1})
    assert s.score(CASE, out({"other": 1})).reason.startswith("output has no field 'snapshot'")
    assert (
        s.score(CASE, out("plain text")).reason
        == "output is plain text, it has no field 'snapshot'"
    )
    failed = s.score(CASE, CaseOutput(error="TimeoutError: slow"))
    assert failed.value == 0.0 and failed.reason == "run failed: TimeoutError: slow"


def test_blocking_failures_name_the_blocking_scorers_only() -> None:
    scorers = bind_scorers(
        SPECS.validate_python(
            [
                {"type": "regex", "pattern": "guarantee", "must_match": False, "blocking": True},
                {"type": "word_count", "max": 1},
            ]
        )
    )
    failures = blocking_failures(scorers, CASE, out("we guarantee results"))
    assert [f.scorer for f in failures] == ["regex"]
    assert blocking_failures(scorers, CASE, out("fine words here")) == []


def test_scorer_names_must_be_unique() -> None:
    with pytest.raises(InvalidInput, match="both named"):
        bind_scorers(
            SPECS.validate_python([{"type": "length", "max": 3}, {"type": "length", "max": 4}])
        )


def test_any_synchronous_pydantic_evals_evaluator_is_a_scorer() -> None:
    s = EvaluatorScorer(Contains(value="Acme"), field="snapshot", oracle=True)
    assert s.score(CASE, out({"snapshot": "Acme builds"})).value == 1.0
    assert isinstance(s, Scorer)
    t = EvaluatorScorer(IsInstance(type_name="str"))
    assert t.score(CASE, out({"a": 1})).reason == "output is of type dict"

    class Half(Evaluator[Any, Any, Any]):
        def evaluate(self, ctx: EvaluatorContext[Any, Any, Any]) -> EvaluationReason:
            return EvaluationReason(0.5, reason=f"half of {ctx.name}")

    assert EvaluatorScorer(Half()).score(CASE, out("x")).reason == "half of c1"

    class TooBig(Evaluator[Any, Any, Any]):
        def evaluate(self, ctx: EvaluatorContext[Any, Any, Any]) -> float:
            return 7.0

    with pytest.raises(InvalidInput, match="number in \\[0, 1\\]"):
        EvaluatorScorer(TooBig()).score(CASE, out("x"))


def test_async_evaluators_are_refused_as_scorers() -> None:
    class Slow(Evaluator[Any, Any, Any]):
        async def evaluate(self, ctx: EvaluatorContext[Any, Any, Any]) -> bool:
            return True

    with pytest.raises(InvalidInput, match="synchronous"):
        EvaluatorScorer(Slow())
