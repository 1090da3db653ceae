from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from keel.errors import SpecError
from keel.evals.config import load_eval_parts, parse_eval_config

AGENT_YAML = """
name: sales-card
evals:
  dataset: evals/cases.jsonl
  scorers:
    - {type: schema, json_schema: {type: object, required: [snapshot]}}
    - {type: word_count, field: snapshot, min: 110, max: 160}
    - {type: language, field: snapshot, expected_from: metadata.locale}
    - {type: regex, field: snapshot, pattern: "(?i)guarantee", must_match: false, blocking: true, name: no_guarantees}
  judges:
    k: 3
    rubric: evals/rubric.md
    model: offline:judge
    scale: "1-5"
    field: snapshot
  gate:
    alpha: 0.05
    kappa_floor: 0.4
"""


def test_a_full_config_parses_and_builds(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    (tmp_path / "evals" / "cases.jsonl").write_text(
        '{"id": "a", "inputs": {}, "metadata": {"locale": "sv"}}\n'
    )
    (tmp_path / "evals" / "rubric.md").write_text("- Mentions the project value\n")
    config = parse_eval_config(yaml.safe_load(AGENT_YAML)["evals"])
    dataset, scorers, panels = load_eval_parts(config, base_dir=tmp_path)
    assert len(dataset) == 1
    assert [s.name for s in scorers] == [
        "schema",
        "word_count:snapshot",
        "language:snapshot",
        "no_guarantees",
    ]
    assert [s.blocking for s in scorers] == [False, False, False, True]
    assert panels[0].k == 3 and panels[0].rubric.startswith("- Mentions")
    assert [j.seed for j in panels[0].judges] == [0, 1, 2]


def test_errors_name_the_field_in_agent_yaml_terms() -> None:
    bad = {
        "dataset": "x.jsonl",
        "scorers": [
            {"type": "word_count", "field": "snapshot", "min": 200, "max": 100},
            {"type": "language", "expected_from": "nowhere.locale"},
            {"type": "regex"},
            {"type": "word_count", "field": "$..x", "min": 1},
        ],
        "judges": {"k": 3, "scale": "5-1", "rubric": "r.md"},
        "gate": {"kappa_floor": 3, "typo": 1},
    }
    with pytest.raises(SpecError) as err:
        parse_eval_config(bad)
    fields = {p.field for p in err.value.problems}
    assert {
        "evals.scorers[0]",
        "evals.scorers[1].expected_from",
        "evals.scorers[2].pattern",
        "evals.scorers[3].field",
        "evals.judges[0].scale",
        "evals.gate.kappa_floor",
        "evals.gate.typo",
    } <= fields
    assert "agent.yaml:evals.scorers[0]: Value error, min (200) is greater than max (100)" in str(
        err.value
    )


def test_judges_need_exactly_one_rubric_source() -> None:
    with pytest.raises(SpecError, match="exactly one of rubric"):
        parse_eval_config({"judges": {"k": 3}})


def test_a_missing_rubric_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "cases.jsonl").write_text('{"id": "a", "inputs": {}}\n')
    config = parse_eval_config({"dataset": "cases.jsonl", "judges": {"rubric": "missing.md"}})
    with pytest.raises(SpecError, match=r"missing\.md"):
        load_eval_parts(config, base_dir=tmp_path)


def test_the_fingerprint_changes_with_any_setting() -> None:
    a = parse_eval_config({"gate": {"alpha": 0.05}})
    b = parse_eval_config({"gate": {"alpha": 0.01}})
    assert a.fingerprint() == parse_eval_config({}).fingerprint()
    assert a.fingerprint() != b.fingerprint()


@pytest.mark.parametrize(
    "evals",
    [
        {"dataset": "../outside.jsonl"},
        {"dataset": "/etc/passwd"},
        {"dataset": "cases.jsonl", "judges": {"rubric": "../../etc/passwd"}},
        {
            "dataset": "cases.jsonl",
            "scorers": [{"type": "schema", "json_schema_file": "../secret.json"}],
        },
    ],
)
def test_config_files_cannot_escape_the_agent_folder(
    tmp_path: Path, evals: dict[str, object]
) -> None:
    """Attack: a deployed agent folder points its rubric at a server file to leak it to a judge."""
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "cases.jsonl").write_text('{"id": "a", "inputs": {}}\n')
    (tmp_path / "outside.jsonl").write_text('{"id": "a", "inputs": {}}\n')
    (tmp_path / "secret.json").write_text('{"type": "object"}')
    with pytest.raises(SpecError, match="inside the agent folder"):
        load_eval_parts(parse_eval_config(evals), base_dir=agent)
