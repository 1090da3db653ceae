"""`RunDeps`: the Pydantic AI `deps` of every Keel agent run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunDeps:
    """What a tool may know about the run it serves. Never holds secrets: credentials are
    injected by the control plane at execution, not placed here.

    `data_dir` is the deployment's data folder (`.keel/` by default), where example tools keep
    their sample data.
    """

    run_id: str
    tenant_id: str
    user_id: str
    agent: str = ""
    segment: int = 0
    locale: str = "en"
    data_dir: Path = Path(".keel")
    variables: dict[str, Any] = field(default_factory=dict)

    def idempotency_key(self, tool_call_id: str) -> str:
        """A key that is stable across retries and crash recovery of this tool call, so an
        external side effect keyed by it takes effect once."""
        return f"{self.run_id}:{tool_call_id}"
