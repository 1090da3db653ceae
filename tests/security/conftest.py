"""The security tests attack a gated deployment (see tests/control/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.harness import Gated, gated_fixture


@pytest.fixture
def gated(tmp_path: Path, database_url: str) -> Iterator[Gated]:
    yield from gated_fixture(tmp_path, database_url)
