"""Offline models: deterministic, tool-planning, typed, following the prompt's directives."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.tools import ToolDefinition

from keel.agents.builder import (
    build_agent,
    prompt_variables,
    render_prompt,
    user_prompt,
    validate_input,
)
from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent, load_agent
from keel.agents.offline_directives import Directives
from keel.agents.offline_planner import plan_calls
from keel.agents.phrases import FIELD_SENTENCES, LABELS, SENTENCES
from keel.settings import Settings
from tests.conftest import EXAMPLE_AGENTS

THIS_YEAR = datetime.now(UTC).year


async def _run(
    name: str, run_input: dict[str, Any], tmp_path: Path, template: str | None = None
) -> Any:
    loaded: LoadedAgent = load_agent(EXAMPLE_AGENTS / name)
    settings = Settings(home=tmp_path, _env_file=None)  # type: ignore[call-arg]
    validated = validate_input(loaded, run_input)
    instructions = render_prompt(
        template or loaded.prompt_template, prompt_variables(loaded, run_input)
    )
    agent = build_agent(loaded, settings)
    deps = RunDeps(run_id="run_t", tenant_id="t", user_id="u", data_dir=tmp_path)
    result = await agent.run(user_prompt(loaded, validated), instructions=instructions, deps=deps)
    return result.output


async def test_rune_answers_from_the_sample_database_in_swedish(tmp_path: Path) -> None:
    answer = await _run(
        "rune",
        {"question": "Which hospital projects in Stockholm start this year?", "locale": "sv"},
        tmp_path,
    )
    assert answer.startswith("Jag hittade 2 träffar")
    assert "Södersjukhuset ny vårdbyggnad" in answer and "Danderyds sjukhus akutbyggnad" in answer
    assert f"Byggstart: {THIS_YEAR}-" in answer


async def test_the_same_question_gives_the_same_answer(tmp_path: Path) -> None:
    question = {"question": "Which school projects in Göteborg start next year?", "locale": "de"}
    assert await _run("rune", question, tmp_path) == await _run("rune", question, tmp_path)


async def test_sales_card_output_is_valid_and_depends_on_its_input(tmp_path: Path) -> None:
    first = await _run(
        "sales-card",
        {"project_id": "P-0001", "role": "site manager", "locale": "en"},
        tmp_path,
    )
    other = await _run(
        "sales-card", {"project_id": "P-0010", "role": "buyer", "locale": "fr"}, tmp_path
    )
    assert 110 <= len(first.snapshot.split()) <= 160
    assert 3 <= len(first.key_facts) <= 6 and first.language == "en"
    assert "site manager" in first.suggested_next_step
    assert (
        other.language == "fr"
        and other.headline != first.headline
        and "buyer" in other.suggested_next_step
    )


async def test_a_prompt_without_a_language_or_next_step_gives_a_worse_card(tmp_path: Path) -> None:
    card = await _run(
        "sales-card",
        {"project_id": "P-0001", "role": "site manager", "locale": "sv"},
        tmp_path,
        template="Write a sales snapshot of the project for a {{role}}.",
    )
    assert card.suggested_next_step == "Follow up when convenient."  # vague, and English


def test_directives_are_read_from_the_instructions() -> None:
    d = Directives.parse(
        "Write in Danish. The snapshot is 110–160 words. End with a concrete next step. Be persuasive."
    )
    assert (d.language, d.words, d.next_step, d.persuasive, d.exhaustive) == (
        "da",
        (110, 160),
        True,
        True,
        False,
    )
    assert Directives.parse("Answer briefly.").language == "en"


def test_the_planner_fills_parameters_from_the_question() -> None:
    tool = ToolDefinition(
        name="search_projects",
        description="Search construction projects",
        parameters_json_schema={
            "type": "object",
            "properties": {
                "category": {
                    "anyOf": [{"enum": ["hospital", "school"], "type": "string"}, {"type": "null"}]
                },
                "city": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "starts_in_year": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            },
        },
    )
    needs_id = ToolDefinition(
        name="project_details",
        parameters_json_schema={
            "type": "object",
            "properties": {"project_id": {"type": "string"}},
            "required": ["project_id"],
        },
    )
    [call] = plan_calls(
        [tool, needs_id],
        "Which school projects in Malmö start next year?",
        {},
        date(2026, 5, 1),
        set(),
    )
    assert call.tool == "search_projects"
    assert call.args == {"category": "school", "city": "Malmö", "starts_in_year": 2027}
    [by_id] = plan_calls([needs_id], "Tell me about P-0042", {}, date(2026, 5, 1), set())
    assert by_id.args == {"project_id": "P-0042"}


@pytest.mark.parametrize("table", [SENTENCES, FIELD_SENTENCES, LABELS])
def test_every_locale_has_every_phrase(table: dict[str, dict[str, str]]) -> None:
    keys = set(table["en"])
    assert all(set(t) == keys for t in table.values())
    assert set(table) == {"en", "sv", "da", "no", "fi", "de", "fr", "cs", "sk"}
