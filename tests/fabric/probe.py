"""Reading the test agents' side effects (see agents/_probe/effects.py) from the tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PATH = Path(__file__).parent / "agents" / "_probe" / "effects.py"


def effects() -> ModuleType:
    """The same module the agents' tools import (loaded once, by file)."""
    if "_probe.effects" in sys.modules:
        return sys.modules["_probe.effects"]
    sys.path.append(str(_PATH.parent.parent))
    spec = importlib.util.spec_from_file_location("_probe.effects", _PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_probe.effects"] = module
    spec.loader.exec_module(module)
    return module
