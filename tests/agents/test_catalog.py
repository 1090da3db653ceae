"""Deployment: spec versions recorded, prompts seeded once, `latest` following the file."""

from __future__ import annotations

import shutil
from pathlib import Path

from keel.fabric.catalog import AgentCatalog
from keel.settings import Settings
from keel.store.database import Database
from tests.conftest import EXAMPLE_AGENTS


def _settings(tmp_path: Path, agents: Path) -> Settings:
    return Settings(env="test", home=tmp_path / "h", agents_dirs=[agents], _env_file=None)  # type: ignore[call-arg]


def test_deploy_seeds_production_once_and_latest_follows_the_file(
    tmp_path: Path, db: Database
) -> None:
    agents = tmp_path / "agents"
    shutil.copytree(EXAMPLE_AGENTS, agents)
    settings = _settings(tmp_path, agents)
    catalog = AgentCatalog.load(settings, db)
    assert catalog.prompts.aliases("rune") == {"production": 1, "latest": 1}
    AgentCatalog.load(settings, db)  # deploying again changes nothing
    assert [v.version for v in catalog.prompts.versions("rune")] == [1]

    prompt = agents / "rune" / "prompt.md"
    prompt.write_text(prompt.read_text() + "\nBe brief.\n")
    again = AgentCatalog.load(settings, db)
    assert again.prompts.aliases("rune") == {"production": 1, "latest": 2}
    prepared = again.prepare("rune", {"question": "hi", "locale": "fi"})
    assert prepared.prompt_version == 1 and "Finnish" in prepared.instructions
    assert prepared.model == "offline:large"  # routed by locale
    assert again.prepare("rune", {"question": "hi"}, prompt="latest").prompt_version == 2
