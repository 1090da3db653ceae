"""Rune's tools: read-only queries over the bundled sample database, all through governed SQL.

`search_projects`, `project_details` and `company_contacts` are named, parameterised queries
(the typed way); `query_database` runs SQL the model writes. Both pass the same grants
(`grants.yaml`): granted tables and columns only, contact details masked, a row cap, a
timeout, read-only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from _sample import database
from pydantic import BaseModel, Field
from pydantic_ai import RunContext

from keel.agents.deps import RunDeps
from keel.control.governed_sql import GovernedSQL, NamedQuery
from keel.control.registry import keel_tool
from keel.control.sql_grants import SqlGrants
from keel.control.sql_tool import caller, governed, result_json, run_named, run_query

Category = Literal[
    "hospital", "school", "housing", "office", "road", "bridge", "industrial", "retail"
]
Stage = Literal["planning", "tender", "construction", "completed"]
Region = Literal[database.REGIONS]  # type: ignore[valid-type]
GRANTS = Path(__file__).with_name("grants.yaml")


class ProjectSearch(BaseModel):
    category: str | None = None
    region: str | None = None
    city: str | None = None
    stage: str | None = None
    year: str | None = None
    limit: int = Field(default=10, ge=1, le=50)


class ProjectId(BaseModel):
    project_id: str


class CompanyName(BaseModel):
    pattern: str


SEARCH_PROJECTS = NamedQuery(
    "search_projects",
    "SELECT id, title, category, stage, value_eur, city, region, start_date FROM projects"
    " WHERE (:category IS NULL OR category = :category)"
    " AND (:region IS NULL OR region = :region)"
    " AND (:city IS NULL OR lower(city) = lower(:city))"
    " AND (:stage IS NULL OR stage = :stage)"
    " AND (:year IS NULL OR substr(start_date, 1, 4) = :year)"
    " ORDER BY start_date, id LIMIT :limit",
    ProjectSearch,
)
PROJECT_DETAILS = NamedQuery(
    "project_details",
    "SELECT p.id, p.title, p.category, p.stage, p.value_eur, p.city, p.region, p.start_date,"
    " p.end_date, p.description, o.name AS owner, c.name AS contractor"
    " FROM projects AS p JOIN companies AS o ON o.id = p.owner_id"
    " LEFT JOIN companies AS c ON c.id = p.contractor_id WHERE p.id = :project_id",
    ProjectId,
)
COMPANY_CONTACTS = NamedQuery(
    "company_contacts",
    "SELECT ct.name, ct.role, co.name AS company, co.city"
    " FROM contacts AS ct JOIN companies AS co ON co.id = ct.company_id"
    " WHERE co.name LIKE :pattern ORDER BY ct.name LIMIT 20",
    CompanyName,
)


@cache
def _grants() -> SqlGrants:
    return SqlGrants.load(GRANTS, dialect="sqlite")


def _database(ctx: RunContext[RunDeps]) -> GovernedSQL:
    return governed(f"sqlite:///{database.ensure(ctx.deps.data_dir)}", _grants())


def _project(row: dict[str, Any]) -> dict[str, Any]:
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


@keel_tool(kind="sql", tags=["read", "projects"])
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
    params = ProjectSearch(
        category=category, region=region, city=city, stage=stage, limit=limit,
        year=str(starts_in_year) if starts_in_year is not None else None,
    )  # fmt: skip
    result = run_named(_database(ctx), SEARCH_PROJECTS, params, caller(ctx))
    return [_project(r) for r in result.records()]


@keel_tool(kind="sql", tags=["read", "projects"])
def project_details(ctx: RunContext[RunDeps], project_id: str) -> dict[str, Any]:
    """One project with its owner, contractor and description, by id (e.g. P-0001)."""
    result = run_named(_database(ctx), PROJECT_DETAILS, {"project_id": project_id}, caller(ctx))
    if not result.rows:
        return {"error": f"no project with id {project_id}"}
    row = result.records()[0]
    return {**_project(row), "owner": row["owner"], "contractor": row["contractor"],
            "end_date": row["end_date"], "description": row["description"]}  # fmt: skip


@keel_tool(kind="sql", tags=["read", "contacts"])
def company_contacts(ctx: RunContext[RunDeps], company: str) -> list[dict[str, Any]]:
    """Contacts at companies whose name contains COMPANY."""
    params = {"pattern": f"%{company}%"}
    return run_named(_database(ctx), COMPANY_CONTACTS, params, caller(ctx)).records()


@keel_tool(kind="sql", sensitivity="medium", tags=["read", "sql"])
def query_database(ctx: RunContext[RunDeps], sql: str) -> dict[str, Any]:
    """Run one read-only SQL SELECT over the sample database and get columns and rows.

    Tables: projects(id, title, category, stage, value_eur, country, region, city,
    start_date, end_date, owner_id, contractor_id, description), companies(id, name, type,
    city, country, org_number), contacts(id, company_id, name, role, email, phone).
    Dates are ISO text; contact emails and phones are masked. At most 50 rows.
    """
    return result_json(run_query(_database(ctx), sql, caller(ctx)))
