"""Fixtures for the fabric tests."""

from __future__ import annotations

from tests.fabric.workers import harness  # noqa: F401  (fixture)
