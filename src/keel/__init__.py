"""Keel: declare an agent as a spec; inherit durable runs, a control plane, evals and an API."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ("__version__",)
