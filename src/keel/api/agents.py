"""Which agents the API accepts: an `AgentCatalog` injected into `create_app`.

The agent registry (spec loading) is another plane; until it is wired in, the default
`SettingsAgentCatalog` lists `KEEL_AGENT_NAMES` plus every sub-folder of
`KEEL_AGENTS_DIRS` (one folder per agent), re-read on each call so a new folder needs no
restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from keel.settings import Settings


class AgentCatalog(Protocol):
    """Names of the agents a conversation may be opened with."""

    def exists(self, name: str) -> bool: ...

    def names(self) -> list[str]: ...


class StaticAgentCatalog:
    """A fixed set of names (tests, embedding)."""

    def __init__(self, names: list[str] | tuple[str, ...]) -> None:
        self._names = sorted(set(names))

    def exists(self, name: str) -> bool:
        return name in self._names

    def names(self) -> list[str]:
        return list(self._names)


class SettingsAgentCatalog:
    """`settings.agent_names` ∪ the sub-folders of `settings.agents_dirs`."""

    def __init__(self, settings: Settings) -> None:
        self._names = set(settings.agent_names)
        self._dirs = list(settings.agents_dirs)

    def exists(self, name: str) -> bool:
        return name in self.names()

    def names(self) -> list[str]:
        found = set(self._names)
        for folder in self._dirs:
            found.update(_agent_folders(folder))
        return sorted(found)


def _agent_folders(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
