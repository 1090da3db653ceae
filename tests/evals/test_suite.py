"""An agent's eval suite: `{{year}}` in datasets, and the sales-card suite that ships."""

from __future__ import annotations

import sqlite3
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from keel.agents.loader import load_agent
from keel.errors import SpecError
from keel.evals.dataset import parse_dataset
from keel.evals.delivery import suite_of
from keel.evals.offline_judge import criteria_of
from keel.evals.suite import fill_placeholders
from tests.conftest import EXAMPLE_AGENTS

LOCALES = {"sv", "da", "no", "fi", "de", "fr", "cs", "sk"}


def test_year_placeholders_are_filled_and_change_the_version() -> None:
    raw = parse_dataset(
        '{"id": "a", "inputs": {"project_id": "P-{{year}}-0001", "tags": ["{{ year }}"]}, '
        '"expected": {"note": "from {{year}}"}, "metadata": {"locale": "sv"}}\n'
    )
    this = fill_placeholders(raw, today=date(2026, 12, 31))
    following = fill_placeholders(raw, today=date(2027, 1, 1))
    assert this.cases[0].inputs == {"project_id": "P-2026-0001", "tags": ["2026"]}
    assert this.cases[0].expected == {"note": "from 2026"}
    assert following.cases[0].inputs["project_id"] == "P-2027-0001"
    assert this.version != following.version != raw.version


def test_an_unknown_placeholder_is_an_error_naming_the_case() -> None:
    raw = parse_dataset('{"id": "c7", "inputs": {"q": "{{month}}"}}\n', source="cases.jsonl")
    with pytest.raises(SpecError) as err:
        fill_placeholders(raw)
    assert (
        str(err.value.problems[0])
        == "cases.jsonl:c7:placeholder: unknown {{month}}; supported: year"
    )


def test_sales_card_ships_40_cases_over_the_eight_locales_and_a_rubric() -> None:
    suite = suite_of(load_agent(EXAMPLE_AGENTS / "sales-card"))
    assert suite is not None
    dataset = suite.dataset()
    assert len(dataset) >= 40
    per_locale = Counter(c.metadata["locale"] for c in dataset.cases)
    assert set(per_locale) == LOCALES and min(per_locale.values()) >= 5
    assert {c.inputs["locale"] for c in dataset.cases} == LOCALES
    assert len({c.inputs["role"] for c in dataset.cases}) >= 8
    assert all(c.expected and c.expected["contact"] for c in dataset.cases)
    [panel] = suite.panels
    assert panel.k == 3 and len(criteria_of(panel.rubric)) == 6
    assert {s.name for s in suite.scorers} >= {"schema", "words", "language", "next_step"}
    assert [s.name for s in suite.scorers if s.blocking] == ["no_guarantees"]


@pytest.mark.parametrize("today", [date.today(), date(date.today().year + 1, 1, 2)])
def test_every_sales_card_case_names_a_project_of_that_years_sample_database(
    today: date, tmp_path: Path
) -> None:
    sys.path.insert(0, str(EXAMPLE_AGENTS))
    try:
        from _sample import database  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE_AGENTS))
    db_file = tmp_path / "sample.db"
    database.build(db_file, today.year)
    suite = suite_of(load_agent(EXAMPLE_AGENTS / "sales-card"))
    assert suite is not None
    cases = suite.dataset(today=today).cases
    with sqlite3.connect(db_file) as conn:
        rows = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT p.id, o.name, (SELECT name FROM contacts WHERE company_id = p.owner_id "
                "ORDER BY name LIMIT 1) FROM projects p JOIN companies o ON o.id = p.owner_id"
            )
        }
    for case in cases:
        assert case.inputs["project_id"] in rows, case.id
        assert rows[case.inputs["project_id"]] == (
            case.expected["client"],
            case.expected["contact"],
        )


def test_online_sampling_is_validated_with_the_field_named(tmp_path: Path) -> None:
    from keel.evals.suite import EvalSuite

    with pytest.raises(SpecError) as err:
        EvalSuite.build("a", "a", tmp_path, {"online": {"sample": 1.5}})
    assert str(err.value.problems[0]) == (
        "agent.yaml:evals.online.sample: Input should be less than or equal to 1"
    )
    suite = EvalSuite.build("a", "a", tmp_path, {"online": {"sample": 0.25}})
    assert suite.config.online.sample == 0.25 and not suite.configured
