"""Agent folders: loading, content-hash versions, and every problem reported as file:field: reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.agents.loader import discover_agents, folder_version, load_agent
from keel.errors import SpecError
from tests.conftest import EXAMPLE_AGENTS


def _agent(root: Path, name: str, files: dict[str, str]) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    for rel, text in files.items():
        (folder / rel).write_text(text)
    return folder


def _problems(folder: Path) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_agent(folder)
    return [str(p) for p in err.value.problems]


def test_the_examples_load_with_their_tools_and_types() -> None:
    agents = discover_agents([EXAMPLE_AGENTS])
    assert sorted(agents) == ["rune", "sales-card"]
    assert set(agents["rune"].tools) == {
        "search_projects",
        "project_details",
        "company_contacts",
        "query_database",
    }
    assert agents["sales-card"].output_type.__name__ == "SalesCard"
    assert len(agents["rune"].version) == 64


def test_the_version_is_the_content_hash_of_the_folder(tmp_path: Path) -> None:
    folder = _agent(
        tmp_path,
        "a",
        {"agent.yaml": "name: a\nmodel: {default: 'offline:chat'}\n", "prompt.md": "Hi"},
    )
    first = folder_version(folder)
    (folder / "notes.db").write_text("data files do not count")
    assert folder_version(folder) == first
    (folder / "prompt.md").write_text("Hello")
    assert folder_version(folder) != first


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    folder = _agent(tmp_path, "a", {"agent.yaml": "name: a\nmodel: {default: offline:chat\n"})
    [problem] = _problems(folder)
    assert problem.startswith("agent.yaml:line 3: invalid YAML")


def test_unknown_fields_bad_names_and_bad_models_are_each_reported(tmp_path: Path) -> None:
    folder = _agent(
        tmp_path, "a",
        {"agent.yaml": "name: A_b\nmodel: {default: gpt4}\ncolour: blue\ninput: json\n", "prompt.md": "x"},
    )  # fmt: skip
    problems = _problems(folder)
    assert any(p.startswith("agent.yaml:name:") for p in problems)
    assert any(p.startswith("agent.yaml:model.default:") and "model string" in p for p in problems)
    assert any(p.startswith("agent.yaml:colour:") for p in problems)
    assert any(p.startswith("agent.yaml:input:") for p in problems)


def test_unknown_tool_missing_prompt_and_bad_output_schema(tmp_path: Path) -> None:
    folder = _agent(
        tmp_path,
        "a",
        {
            "agent.yaml": "name: a\nmodel: {default: 'offline:chat'}\ntools: [nope]\noutput: schema:Card\nprompt: {file: gone.md}\n",
            "schema.py": "class Card:\n    pass\n",
        },
    )
    problems = _problems(folder)
    assert "agent.yaml:tools.0: unknown tool 'nope' (not in tools.py or the registry)" in problems
    assert "agent.yaml:prompt.file: prompt file 'gone.md' not found" in problems
    assert "schema.py:Card: output: not a Pydantic model class in schema.py" in problems


def test_a_tools_module_that_fails_to_import_is_reported(tmp_path: Path) -> None:
    folder = _agent(
        tmp_path, "a",
        {"agent.yaml": "name: a\nmodel: {default: 'offline:chat'}\n", "prompt.md": "x", "tools.py": "import nowhere_module\n"},
    )  # fmt: skip
    [problem] = _problems(folder)
    assert problem.startswith("tools.py:-: import failed: ModuleNotFoundError")


def test_duplicate_agent_names_across_folders(tmp_path: Path) -> None:
    spec = {"agent.yaml": "name: same\nmodel: {default: 'offline:chat'}\n", "prompt.md": "x"}
    _agent(tmp_path, "one", spec)
    _agent(tmp_path, "two", spec)
    with pytest.raises(SpecError) as err:
        discover_agents([tmp_path])
    assert any("duplicate agent name 'same'" in str(p) for p in err.value.problems)
