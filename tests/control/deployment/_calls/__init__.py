"""What the gate tests' tools did: every call that really executed is appended here, so a
test can assert a denied tool never ran (the tools import this module by name; so do tests)."""

from __future__ import annotations

from typing import Any

CALLS: list[tuple[str, dict[str, Any]]] = []
SWITCHES: dict[str, bool] = {"ledger_down": False}


def ran(tool: str) -> list[dict[str, Any]]:
    return [args for name, args in CALLS if name == tool]
