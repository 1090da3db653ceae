"""The offline writer's `close_with_step` directive, which gives the sales-card demo a prompt
that is better by the metrics: the snapshot ends with the next step, inside its word range."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.agents.builder import (
    build_agent,
    prompt_variables,
    render_prompt,
    route_model,
    user_prompt,
    validate_input,
)
from keel.agents.deps import RunDeps
from keel.agents.loader import load_agent
from keel.agents.offline_directives import Directives
from keel.settings import Settings
from tests.conftest import EXAMPLE_AGENTS

SALES_CARD = EXAMPLE_AGENTS / "sales-card"


@pytest.mark.parametrize(
    ("text", "closes"),
    [
        ("End the snapshot itself with that next step.", True),
        ("Close the summary with the next step for the reader.", True),
        ("finishes the paragraph with a call to action", False),
        ("End with a concrete next step.", False),
        ("Suggest a concrete next step.", False),
    ],
)
def test_the_directive_is_read_from_the_prompt(text: str, closes: bool) -> None:
    assert Directives.parse(text).close_with_step is closes


async def card(template: str, locale: str, tmp_path: Path) -> dict[str, object]:
    loaded = load_agent(SALES_CARD)
    agent = build_agent(loaded, _settings(tmp_path))
    run_input = {
        "project_id": f"P-{datetime.now(UTC).year}-0012",
        "role": "site manager",
        "locale": locale,
    }
    validated = validate_input(loaded, run_input)
    clean = validated.model_dump(mode="json")
    result = await agent.run(
        user_prompt(loaded, validated),
        instructions=render_prompt(template, prompt_variables(loaded, clean)),
        model=route_model(loaded, clean, _settings(tmp_path)),
        deps=RunDeps(
            run_id="r",
            tenant_id="t",
            user_id="u",
            agent=loaded.name,
            locale=locale,
            data_dir=tmp_path / "home",
        ),
    )
    return dict(result.output.model_dump())


def _settings(tmp_path: Path) -> Settings:
    return Settings(env="test", home=tmp_path / "home", _env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("locale", ["sv", "fi", "cs"])
async def test_the_better_prompt_ends_the_snapshot_with_the_next_step_within_the_range(
    locale: str, tmp_path: Path
) -> None:
    seed = (SALES_CARD / "prompt.md").read_text()
    better = (SALES_CARD / "evals" / "prompts" / "better.md").read_text()
    before = await card(seed, locale, tmp_path)
    after = await card(better, locale, tmp_path)
    step = str(after["suggested_next_step"])
    assert str(after["snapshot"]).endswith(step) and step == before["suggested_next_step"]
    assert not str(before["snapshot"]).endswith(step)
    for produced in (before, after):
        assert 110 <= len(str(produced["snapshot"]).split()) <= 160
