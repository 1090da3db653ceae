"""Rune through the gate with governed SQL: a model that writes SQL gets granted, masked,
capped rows; attacks are refused with the reason and never reach the database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.control.plane import ControlPlane
from keel.fabric.catalog import AgentCatalog
from keel.fabric.extensions import FabricExtensions
from keel.fabric.service import Fabric
from keel.identity.keys import ensure_tenant
from keel.identity.principal import Principal
from keel.settings import Settings
from keel.store.database import Database
from tests.conftest import EXAMPLE_AGENTS
from tests.control.harness import (
    SCRIPTS,
    SEEN,
    answer,
    calls,
    reset,
    script_resolver,
    steps,
    tool_returns,
)

ANNA = Principal(tenant_id="t1", user_id="anna", scopes=("*",))


@pytest.fixture
def rune(tmp_path: Path, database_url: str) -> Iterator[Fabric]:
    reset()
    settings = Settings(  # type: ignore[call-arg]
        env="test", home=tmp_path / "home", database_url=database_url,
        agents_dirs=[EXAMPLE_AGENTS], model_override="script:default", _env_file=None,
    )  # fmt: skip
    db = Database.from_settings(settings)
    db.upgrade()
    ensure_tenant(db, "t1")
    catalog = AgentCatalog.load(settings, db)
    extensions = FabricExtensions()
    ControlPlane.build(settings, db, catalog, deployment_tools={}).install(extensions)
    extensions.capabilities.append(lambda _loaded: [script_resolver()])
    fabric = Fabric(settings, db, catalog, extensions=extensions)
    fabric.start(execute=True)
    yield fabric
    fabric.stop()
    db.dispose()
    reset()


async def _query(fabric: Fabric, *sqls: str) -> list[object]:
    SCRIPTS["default"] = steps(
        calls(*[("query_database", {"sql": sql}) for sql in sqls]), answer("done")
    )
    view = fabric.submit(ANNA, "rune", {"question": "look it up"})
    done = await fabric.wait("t1", view.id, timeout=30)
    assert done.status == "succeeded", done.error
    return [r.content for r in tool_returns(SEEN[-1]) if r.tool_name == "query_database"]


async def test_the_model_writes_sql_and_gets_granted_masked_rows(rune: Fabric) -> None:
    [result] = await _query(
        rune,
        "SELECT ct.name, ct.email, ct.phone, co.name AS company FROM contacts ct "
        "JOIN companies co ON co.id = ct.company_id ORDER BY ct.id LIMIT 3",
    )
    assert isinstance(result, dict) and result["columns"] == ["name", "email", "phone", "company"]
    assert len(result["rows"]) == 3
    assert all(row[1] == "(masked)" and row[2] == "(masked)" for row in result["rows"])


async def test_an_aggregate_over_projects_runs(rune: Fabric) -> None:
    [result] = await _query(
        rune,
        "SELECT category, count(*) AS n FROM projects WHERE city = 'Stockholm' "
        "GROUP BY category ORDER BY n DESC, category",
    )
    assert isinstance(result, dict) and result["columns"] == ["category", "n"]
    assert ["hospital", 2] in result["rows"] or any(r[0] == "hospital" for r in result["rows"])


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DROP TABLE projects", "only SELECT is allowed"),
        ("SELECT 1; DELETE FROM projects", "exactly one statement"),
        ("SELECT name FROM sqlite_master", "system catalog"),
        ("SELECT * FROM meta", "table meta is not granted"),
        ("SELECT id FROM projects -- and more", "comments are not allowed"),
        ("SELECT id FROM projects UNION SELECT sql FROM sqlite_master", "system catalog"),
        ("SELECT load_extension('x')", "function load_extension() is not allowed"),
        ("SELECT secret_column FROM projects", "only granted columns"),
        ("WITH projects AS (SELECT 1 AS id) SELECT id FROM projects", "shadows a table"),
    ],
)
async def test_sql_attacks_are_refused_with_the_reason(rune: Fabric, sql: str, reason: str) -> None:
    [result] = await _query(rune, sql)
    assert isinstance(result, str) and result.startswith("query refused:"), result
    assert reason in result


async def test_masked_columns_stay_masked_however_the_query_is_written(rune: Fabric) -> None:
    [a, b] = await _query(
        rune,
        "SELECT email FROM (SELECT * FROM contacts) AS c LIMIT 1",
        "SELECT max(phone) AS p FROM contacts WHERE email LIKE '%@%'",
    )
    assert isinstance(a, dict) and a["rows"] == [["(masked)"]]
    assert isinstance(b, dict) and b["rows"] == [[None]]  # no unmasked email matches '%@%'
