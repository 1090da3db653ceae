"""pitch's tool: a fixed project record per id (no database needed)."""

from __future__ import annotations

from typing import Any

from pydantic_ai import RunContext

from keel.agents.deps import RunDeps


def get_project(ctx: RunContext[RunDeps], project_id: str) -> dict[str, Any]:
    """The project by id."""
    return {
        "id": project_id,
        "title": f"Skola Malmö {project_id}",
        "category": "school",
        "stage": "tender",
        "value": "EUR 12 M",
        "city": "Malmö",
        "start_date": "2027-03-01",
        "owner": "Berg Bygg AB",
        "contacts": [{"name": "Eva Berg", "role": "buyer"}],
    }
