"""sales-card's tool: everything the card needs about one project."""

from __future__ import annotations

from typing import Any

from _sample import database
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps


def get_project(ctx: RunContext[RunDeps], project_id: str) -> dict[str, Any]:
    """The project by id, with its client (owner), contractor and the client's contacts."""
    with database.connect(ctx.deps.data_dir) as conn:
        row = conn.execute(
            "SELECT p.*, o.name AS owner, c.name AS contractor FROM projects p "
            "JOIN companies o ON o.id = p.owner_id LEFT JOIN companies c ON c.id = p.contractor_id "
            "WHERE p.id = ?",
            (project_id,),
        ).fetchone()
        if row is None:
            return {"error": f"no project with id {project_id}"}
        contacts = conn.execute(
            "SELECT name, role FROM contacts WHERE company_id = ? ORDER BY name", (row["owner_id"],)
        ).fetchall()
    return {
        "id": row["id"],
        "title": row["title"],
        "category": row["category"],
        "stage": row["stage"],
        "value": database.format_value(row["value_eur"]),
        "city": row["city"],
        "region": row["region"],
        "start_date": row["start_date"],
        "end_date": row["end_date"],
        "owner": row["owner"],
        "contractor": row["contractor"],
        "contacts": [dict(c) for c in contacts],
    }
