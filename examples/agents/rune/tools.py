"""Rune's tools: parameterised, read-only queries over the bundled sample database."""

from __future__ import annotations

from typing import Any, Literal

from _sample import database
from pydantic import Field
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps

Category = Literal[
    "hospital", "school", "housing", "office", "road", "bridge", "industrial", "retail"
]
Stage = Literal["planning", "tender", "construction", "completed"]
Region = Literal[database.REGIONS]  # type: ignore[valid-type]


def _project(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row["title"],
        "category": row["category"],
        "stage": row["stage"],
        "value": database.format_value(row["value_eur"]),
        "city": row["city"],
        "region": row["region"],
        "start_date": row["start_date"],
    }


def search_projects(
    ctx: RunContext[RunDeps],
    category: Category | None = None,
    region: Region | None = None,
    city: str | None = Field(default=None, description="City name, e.g. Stockholm or Aarhus."),
    stage: Stage | None = None,
    starts_in_year: int | None = Field(default=None, description="Calendar year work starts."),
    limit: int = Field(default=10, ge=1, le=50),
) -> list[dict[str, Any]]:
    """Search construction projects by category, region, city, stage and start year."""
    where, params = [], []
    for column, value in (("category", category), ("region", region), ("stage", stage)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if city is not None:
        where.append("lower(city) = lower(?)")
        params.append(city)
    if starts_in_year is not None:
        where.append("substr(start_date, 1, 4) = ?")
        params.append(str(starts_in_year))
    sql = "SELECT * FROM projects" + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += " ORDER BY start_date, id LIMIT ?"
    with database.connect(ctx.deps.data_dir) as conn:
        rows = conn.execute(sql, [*params, limit]).fetchall()
    return [_project(r) for r in rows]


def project_details(ctx: RunContext[RunDeps], project_id: str) -> dict[str, Any]:
    """One project with its owner, contractor and description, by id (e.g. P-2026-0001)."""
    with database.connect(ctx.deps.data_dir) as conn:
        row = conn.execute(
            "SELECT p.*, o.name AS owner, c.name AS contractor FROM projects p "
            "JOIN companies o ON o.id = p.owner_id LEFT JOIN companies c ON c.id = p.contractor_id "
            "WHERE p.id = ?",
            (project_id,),
        ).fetchone()
    if row is None:
        return {"error": f"no project with id {project_id}"}
    return {**_project(row), "owner": row["owner"], "contractor": row["contractor"],
            "end_date": row["end_date"], "description": row["description"]}  # fmt: skip


def company_contacts(ctx: RunContext[RunDeps], company: str) -> list[dict[str, Any]]:
    """Contacts at companies whose name contains COMPANY."""
    with database.connect(ctx.deps.data_dir) as conn:
        rows = conn.execute(
            "SELECT ct.name, ct.role, co.name AS company, co.city FROM contacts ct "
            "JOIN companies co ON co.id = ct.company_id WHERE co.name LIKE ? ORDER BY ct.name LIMIT 20",
            (f"%{company}%",),
        ).fetchall()
    return [dict(r) for r in rows]
