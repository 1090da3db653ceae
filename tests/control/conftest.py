"""Fixtures of the control-plane tests: a gated deployment over each database backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.control.harness import Gated, gated_fixture


@pytest.fixture
def gated(tmp_path: Path, database_url: str) -> Iterator[Gated]:
    yield from gated_fixture(tmp_path, database_url)


@pytest.fixture
def gated_sqlite(tmp_path: Path, sqlite_database_url: str) -> Iterator[Gated]:
    yield from gated_fixture(tmp_path, sqlite_database_url)
