from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.errors import SpecError
from keel.evals.dataset import EvalCase, EvalDataset, cases_from_runs, load_dataset, parse_dataset

GOOD = "\n".join(
    json.dumps(c)
    for c in [
        {
            "id": "a",
            "inputs": {"company": "Acme"},
            "expected": None,
            "metadata": {"locale": "sv", "tier": "gold"},
        },
        {"id": "b", "inputs": {"company": "Beta"}, "metadata": {"locale": "en", "tier": "gold"}},
        {
            "id": "c",
            "inputs": {"company": "Ceta"},
            "expected": {"snapshot": "x"},
            "metadata": {"locale": "sv"},
        },
    ]
)


def test_loading_reads_every_case_in_order(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(GOOD + "\n\n", encoding="utf-8")
    ds = load_dataset(path)
    assert [c.id for c in ds.cases] == ["a", "b", "c"]
    assert ds.name == "cases"
    assert ds.cases[2].expected == {"snapshot": "x"}


def test_every_bad_line_is_reported_as_file_line_reason() -> None:
    text = "\n".join(
        [
            '{"id": "a", "inputs": {}}',
            "{not json",
            '{"id": "b", "inputs": [1, 2]}',
            '["a list"]',
            '{"id": "a", "inputs": {}}',
            '{"inputs": {}, "surprise": 1}',
        ]
    )
    with pytest.raises(SpecError) as err:
        parse_dataset(text, source="evals/cases.jsonl")
    lines = str(err.value).splitlines()
    assert lines[0].startswith("evals/cases.jsonl:2: invalid JSON")
    assert "evals/cases.jsonl:3: inputs: Input should be a valid dictionary" in lines
    assert "evals/cases.jsonl:4: a case must be a JSON object, got list" in lines
    assert "evals/cases.jsonl:6: id: Field required" in lines
    assert "evals/cases.jsonl:6: surprise: Extra inputs are not permitted" in lines
    assert "evals/cases.jsonl:5: id: duplicate case id 'a' (first at 1)" in lines
    assert all(p.file == "evals/cases.jsonl" for p in err.value.problems)


def test_an_empty_or_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no cases"):
        parse_dataset("\n\n")
    with pytest.raises(SpecError, match="not found"):
        load_dataset(tmp_path / "nope.jsonl")


def test_version_is_a_content_hash_independent_of_order_and_formatting() -> None:
    ds = parse_dataset(GOOD)
    reordered = parse_dataset("\n".join(reversed(GOOD.splitlines())))
    reformatted = parse_dataset(
        "\n".join(
            json.dumps(json.loads(line), indent=None, separators=(", ", " : "))
            for line in GOOD.splitlines()
        )
    )
    assert ds.version == reordered.version == reformatted.version
    assert len(ds.version) == 64
    changed = parse_dataset(GOOD.replace("Ceta", "Zeta"))
    assert changed.version != ds.version


def test_slices_come_from_metadata_with_locale_first() -> None:
    ds = parse_dataset(GOOD)
    assert ds.slice_keys() == ["locale"]  # tier is missing on one case
    assert ds.slices("locale") == {"en": ["b"], "sv": ["a", "c"]}
    assert ds.slices("tier") == {"gold": ["a", "b"]}


def test_round_trips_through_jsonl_and_pydantic_evals() -> None:
    ds = parse_dataset(GOOD)
    assert parse_dataset(ds.to_jsonl()).version == ds.version
    pe = ds.to_pydantic_evals()
    assert [c.name for c in pe.cases] == ["a", "b", "c"]
    assert pe.cases[0].metadata == {"locale": "sv", "tier": "gold"}
    back = EvalDataset.from_pydantic_evals(pe)
    assert back.version == ds.version


def test_a_pydantic_evals_dataset_without_case_names_is_refused() -> None:
    from pydantic_evals import Case, Dataset

    pe = Dataset[dict, dict, dict](
        name="prod", cases=[Case(inputs={"x": 1}), Case(name="k", inputs={"x": 2})]
    )
    with pytest.raises(SpecError, match="cases\\[0\\]"):
        EvalDataset.from_pydantic_evals(pe)


def test_runs_become_cases_with_thumbs_up_outputs_as_expected() -> None:
    runs = [
        {
            "id": "run_1",
            "input": {"company": "Acme", "locale": "sv"},
            "output": {"snapshot": "Bra text"},
            "feedback": {"rating": "up", "text": "spot on"},
            "prompt_name": "card",
            "prompt_version": 3,
        },
        {
            "id": "run_2",
            "input": {"company": "Beta"},
            "output": "plain text answer",
            "metadata": {"locale": "en"},
            "feedback": {"rating": "down", "text": "too long"},
        },
        {"id": "run_3", "input": {"company": "Ceta"}, "output": "no feedback"},
        {"id": "run_4", "input": {"company": "Deta"}, "output": None},
    ]
    cases = cases_from_runs(runs)
    assert [c.id for c in cases] == ["run_1", "run_2", "run_3"]
    assert cases[0].expected == {"snapshot": "Bra text"}
    assert cases[0].metadata == {
        "locale": "sv",
        "source_run_id": "run_1",
        "feedback": {"rating": "up", "text": "spot on"},
        "prompt": "card@3",
    }
    assert cases[1].expected is None
    assert cases[1].metadata["feedback"] == {"rating": "down", "text": "too long"}
    assert cases[1].metadata["locale"] == "en"
    assert [c.id for c in cases_from_runs(runs, only_with_feedback=True)] == ["run_1", "run_2"]
    up = cases_from_runs([{"id": "r", "input": {}, "output": "yes", "feedback": {"rating": "up"}}])
    assert up[0].expected == {"output": "yes"}


def test_case_ids_must_be_trimmed_and_non_empty() -> None:
    with pytest.raises(ValueError):
        EvalCase(id=" a", inputs={})
    with pytest.raises(ValueError):
        EvalCase(id="", inputs={})
