"""Governed SQL: the agent writes a query; Keel checks it, rewrites it on the AST and runs it
read-only with a row cap and a timeout.

What is allowed: one SELECT (CTEs, subqueries, joins, set operations, aggregates, window
functions) over granted tables and columns, using an allow-list of expression types and
functions. Everything else is refused with `QueryRefused` naming the problem: DDL/DML, several
statements, comments, unknown or system tables, ungranted columns, functions off the
allow-list, parameters, locking clauses, table functions, qualified names.

How grants are enforced: every reference to a granted table — wherever it appears (aliases,
self-joins, subqueries, CTE bodies, each arm of a UNION) — is replaced on the AST by a derived
table `(SELECT <granted columns, masked> FROM <table> WHERE <row filters>) AS <alias>`. The
database therefore never lets the query see an ungranted column, an unmasked value or a
filtered-out row, whatever the rest of the query does. A CTE may not reuse the name of a
granted or referenced table (it would make "which `projects`?" ambiguous between databases).

`SELECT *` expands to the granted columns (the derived table has no others): a query is not
refused for using `*`, it simply never sees more.

Row cap: a LIMIT larger than `max_rows` (or none) is set to `max_rows + 1`; if more than
`max_rows` rows come back the result is cut and `truncated` is set. OFFSET is kept.

Execution: SQLite is opened read-only (`mode=ro` URI, `PRAGMA query_only`) with an authorizer
that only permits SELECT/READ of granted tables and no PRAGMA/ATTACH, and a progress handler
enforcing the timeout. PostgreSQL runs `SET TRANSACTION READ ONLY` and `SET LOCAL
statement_timeout` in the query's own transaction; give the connection a role that can only
read the granted tables for defence in depth.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import sqlglot
from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError
from sqlglot.optimizer.qualify import qualify

from keel.control.sql_grants import SqlCaller, SqlGrants, TableGrant, is_system_table
from keel.errors import InvalidInput, KeelError

MAX_SQL_LENGTH = 20_000
CHECK_CACHE_SIZE = 512

P = TypeVar("P", bound=BaseModel)


class QueryRefused(InvalidInput):
    """The query was not run: `reason` says what is not allowed."""

    code = "query_refused"

    def __init__(self, reason: str) -> None:
        super().__init__(f"query refused: {reason}", field="sql")
        self.reason = reason


class QueryFailed(KeelError):
    """The database rejected or interrupted an allowed query (`timed_out` for the timeout)."""

    code = "query_failed"

    def __init__(self, message: str, *, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Select,
        exp.From,
        exp.Join,
        exp.Where,
        exp.Group,
        exp.Having,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.Offset,
        exp.Distinct,
        exp.Column,
        exp.Identifier,
        exp.Table,
        exp.TableAlias,
        exp.Alias,
        exp.Subquery,
        exp.CTE,
        exp.With,
        exp.Union,
        exp.Intersect,
        exp.Except,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Star,
        exp.Paren,
        exp.Tuple,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.NullSafeEQ,
        exp.NullSafeNEQ,
        exp.And,
        exp.Or,
        exp.Not,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.Mod,
        exp.IntDiv,
        exp.Neg,
        exp.DPipe,
        exp.Like,
        exp.ILike,
        exp.Escape,
        exp.In,
        exp.Between,
        exp.Is,
        exp.Case,
        exp.If,
        exp.Cast,
        exp.TryCast,
        exp.DataType,
        exp.DataTypeParam,
        exp.Window,
        exp.WindowSpec,
        exp.Exists,
        exp.Interval,
        exp.Filter,
        exp.Any,
        exp.All,
        exp.BitwiseAnd,
        exp.BitwiseOr,
        exp.BitwiseXor,
        exp.BitwiseNot,
        exp.Collate,
        exp.Var,
    }
)

_FUNCTIONS: frozenset[type[exp.Func]] = frozenset(
    {
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Min,
        exp.Max,
        exp.GroupConcat,
        exp.ArrayAgg,
        exp.Stddev,
        exp.StddevPop,
        exp.StddevSamp,
        exp.Variance,
        exp.VariancePop,
        exp.RowNumber,
        exp.Rank,
        exp.DenseRank,
        exp.Lag,
        exp.Lead,
        exp.FirstValue,
        exp.LastValue,
        exp.NthValue,
        exp.Ntile,
        exp.PercentRank,
        exp.CumeDist,
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Substring,
        exp.Trim,
        exp.Coalesce,
        exp.Nullif,
        exp.Round,
        exp.Abs,
        exp.Ceil,
        exp.Floor,
        exp.Sqrt,
        exp.Pow,
        exp.Ln,
        exp.Log,
        exp.Exp,
        exp.Sign,
        exp.Greatest,
        exp.Least,
        exp.Concat,
        exp.ConcatWs,
        exp.Replace,
        exp.StrPosition,
        exp.Left,
        exp.Right,
        exp.Initcap,
        exp.Typeof,
        exp.Date,
        exp.Datetime,
        exp.Time,
        exp.CurrentDate,
        exp.CurrentTimestamp,
        exp.CurrentTime,
        exp.DateTrunc,
        exp.TimestampTrunc,
        exp.Extract,
        exp.TimeToStr,
        exp.TsOrDsToTimestamp,
        exp.StrToTime,
        exp.ToChar,
        exp.DateAdd,
        exp.DateSub,
        exp.DateDiff,
        exp.Year,
        exp.Month,
        exp.Day,
    }
)

# Functions sqlglot leaves as `Anonymous`, allowed by name. Deliberately absent: anything that
# touches files, the network, the server or sleeps (load_extension, readfile, writefile,
# pg_read_file, pg_ls_dir, lo_import, dblink, pg_sleep, current_setting, set_config, …) and
# anything that can build huge values (printf, zeroblob, randomblob, repeat, lpad, rpad).
_ANONYMOUS: frozenset[str] = frozenset(
    {"julianday", "unixepoch", "date_part", "age", "make_date", "split_part", "ifnull"}
)
_VAR_PARENTS = (exp.Extract, exp.Interval, exp.TimestampTrunc, exp.DateTrunc, exp.DataType)


@dataclass(frozen=True)
class CheckedQuery:
    """A query that passed the checks: the SQL to run and the row cap it carries."""

    sql: str
    tables: tuple[str, ...]
    max_rows: int
    fetch_limit: int


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    row_count: int
    truncated: bool
    sql: str

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts (a later duplicate column name wins)."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _literal(value: Any, where: str) -> exp.Expr:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | Decimal):
        return exp.Literal.number(value)
    if isinstance(value, datetime | date):
        return exp.Literal.string(value.isoformat())
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise InvalidInput(f"{where}: {type(value).__name__} cannot be a SQL parameter", field=where)


def _bind(expression: exp.Expr, params: Mapping[str, Any], where: str) -> exp.Expr:
    """A copy with every `:name` placeholder replaced by a literal."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Placeholder):
            name = str(node.this or "")
            if name not in params:
                raise InvalidInput(
                    f"{where}: no value for parameter :{name}", field=f"{where}.{name}"
                )
            return _literal(params[name], f"{where}.{name}")
        return node

    return expression.copy().transform(swap)


def _ancestors(node: exp.Expr) -> list[exp.Expr]:
    out, parent = [], node.parent
    while parent is not None:
        out.append(parent)
        parent = parent.parent
    return out


def _visible_ctes(table: exp.Table) -> set[str]:
    """CTE names a table reference can mean, by the strict rule both databases share:
    earlier siblings in the same WITH, every CTE of an enclosing WITH whose body the reference
    is not in, and itself only under WITH RECURSIVE."""
    ancestors = _ancestors(table)
    ids = {id(a) for a in ancestors}
    visible: set[str] = set()
    for node in ancestors:
        with_ = node.args.get("with_") or node.args.get("with")
        if not isinstance(with_, exp.With):
            continue
        names = [cte.alias_or_name.lower() for cte in with_.expressions]
        inside = [i for i, cte in enumerate(with_.expressions) if id(cte) in ids]
        if inside:
            i = inside[0]
            visible.update(names[:i])
            if with_.args.get("recursive"):
                visible.add(names[i])
        else:
            visible.update(names)
    return visible


class GovernedSQL:
    """Checks, rewrites and runs agent-written SELECTs against one database under `grants`.

    `url` is a SQLAlchemy URL of the data source (a SQLite file or PostgreSQL); it is never
    written to. Thread-safe; `close()` releases the PostgreSQL pool.
    """

    def __init__(self, url: str, grants: SqlGrants) -> None:
        self.url = url
        self.grants = grants
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            self.dialect = "sqlite"
            if not parsed.database or parsed.database == ":memory:":
                raise InvalidInput("governed SQL needs a SQLite file, not :memory:", field="url")
            self._sqlite_path: str | None = parsed.database
            self._engine: Engine | None = None
        elif backend == "postgresql":
            self.dialect = "postgres"
            self._sqlite_path = None
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            self._engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
        else:
            raise InvalidInput(
                f"governed SQL supports SQLite and PostgreSQL, not {backend}", field="url"
            )
        self._checked: OrderedDict[tuple[Any, ...], CheckedQuery] = OrderedDict()
        self._checked_lock = threading.Lock()
        self._schema: dict[str, object] = {
            name: dict.fromkeys(grant.columns, "UNKNOWN") for name, grant in grants.tables.items()
        }
        # Tables the SQLite authorizer lets the engine read: the granted ones and any a
        # filter or mask subquery of the (trusted) grant configuration reads.
        self._readable = set(grants.tables) | {
            t.name.lower()
            for grant in grants.tables.values()
            for expr in (
                grant.row_filter,
                *grant.role_filters.values(),
                *(m.expr for m in grant.masks.values()),
            )
            if expr is not None
            for t in expr.find_all(exp.Table)
        }

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # --- checking ------------------------------------------------------------------------

    def _parse(self, sql: str) -> exp.Query:
        if len(sql) > MAX_SQL_LENGTH:
            raise QueryRefused(f"query longer than {MAX_SQL_LENGTH} characters")
        try:
            statements = sqlglot.parse(sql, read=self.dialect)
        except (ParseError, SqlglotError) as exc:
            raise QueryRefused(f"cannot parse the query: {str(exc).splitlines()[0]}") from exc
        except RecursionError as exc:
            raise QueryRefused("the query is nested too deeply") from exc
        real = [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]
        if any(isinstance(s, exp.Semicolon) for s in statements if s is not None):
            raise QueryRefused("SQL comments are not allowed")
        if len(real) != 1:
            raise QueryRefused(f"exactly one statement is allowed, got {len(real)}")
        [statement] = real
        if not isinstance(statement, exp.Select | exp.Union | exp.Intersect | exp.Except):
            kind = (
                statement.key.upper()
                if not isinstance(statement, exp.Command)
                else str(statement.this).upper()
            )
            raise QueryRefused(f"only SELECT is allowed, not {kind}")
        return statement

    def _check_node(self, node: exp.Expr) -> None:
        if getattr(node, "comments", None):
            raise QueryRefused("SQL comments are not allowed")
        kind = type(node)
        if kind in _NODES:
            if isinstance(node, exp.Var) and not isinstance(node.parent, _VAR_PARENTS):
                raise QueryRefused(f"bare keyword {node.name!r} is not allowed here")
            if isinstance(node, exp.Column) and (node.args.get("db") or node.args.get("catalog")):
                raise QueryRefused(f"qualified column {node.sql(self.dialect)} is not allowed")
            return
        if isinstance(node, exp.Anonymous):
            name = str(node.this).lower()
            if name not in _ANONYMOUS and name not in self.grants.functions:
                raise QueryRefused(f"function {name}() is not allowed")
            return
        if isinstance(node, exp.Func):
            if kind not in _FUNCTIONS and node.sql_name().lower() not in self.grants.functions:
                raise QueryRefused(f"function {node.sql_name().lower()}() is not allowed")
            return
        if isinstance(node, exp.Placeholder | exp.Parameter):
            raise QueryRefused("query parameters are not allowed; write the values inline")
        raise QueryRefused(f"{node.key.upper()} is not allowed")

    def _table_grant(self, table: exp.Table, ctes: set[str]) -> TableGrant | None:
        """The grant a table reference reads, or None when it names a visible CTE."""
        if not isinstance(table.this, exp.Identifier):
            raise QueryRefused(f"table functions are not allowed ({table.sql(self.dialect)})")
        extras = [
            k for k, v in table.args.items() if v and k not in ("this", "alias", "db", "catalog")
        ]
        if extras:
            raise QueryRefused(f"{extras[0].upper()} on a table is not allowed")
        parts = [p.name.lower() for p in (table.args.get("catalog"), table.args.get("db")) if p]
        name = table.name.lower()
        full = ".".join([*parts, name])
        if is_system_table(name) or any(
            p in ("pg_catalog", "information_schema") or is_system_table(p) for p in parts
        ):
            raise QueryRefused(f"system catalog {full} is not allowed")
        if parts:
            raise QueryRefused(f"qualified table name {full} is not allowed; use {name}")
        alias = table.args.get("alias")
        if isinstance(alias, exp.TableAlias) and alias.columns:
            raise QueryRefused(f"column aliases on table {name} are not allowed")
        if name in _visible_ctes(table):
            return None
        grant = self.grants.tables.get(name)
        if grant is None:
            raise QueryRefused(f"table {name} is not granted")
        return grant

    def check(self, sql: str, caller: SqlCaller) -> CheckedQuery:
        """Refuse (QueryRefused) or return the rewritten SQL to run for `caller`.

        The grants never change for this instance, so a verdict depends only on the SQL text
        and the caller: accepted queries are remembered (LRU, `CHECK_CACHE_SIZE`), and the
        same question asked again costs no parse. Refusals are not cached."""
        key = (sql, caller.roles, tuple(sorted(caller.params().items())))
        try:
            hash(key)
        except TypeError:  # an unhashable caller attribute: check every time
            return self._check(sql, caller)
        with self._checked_lock:
            hit = self._checked.get(key)
            if hit is not None:
                self._checked.move_to_end(key)
                return hit
        checked = self._check(sql, caller)
        with self._checked_lock:
            self._checked[key] = checked
            if len(self._checked) > CHECK_CACHE_SIZE:
                self._checked.popitem(last=False)
        return checked

    def _check(self, sql: str, caller: SqlCaller) -> CheckedQuery:
        query = self._parse(sql)
        for node in query.walk():
            self._check_node(node)
        ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
        refs: list[tuple[exp.Table, TableGrant]] = []
        for table in list(query.find_all(exp.Table)):
            grant = self._table_grant(table, ctes)
            if grant is not None:
                refs.append((table, grant))
        clash = ctes & (set(self.grants.tables) | {g.name for _, g in refs})
        if clash:
            raise QueryRefused(f"CTE name {sorted(clash)[0]} shadows a table; rename the CTE")
        self._check_columns(query)
        params = caller.params()
        for table, grant in refs:
            table.replace(self._derived_table(table, grant, caller, params))
        max_rows = self.grants.max_rows
        fetch_limit = self._apply_limit(query, max_rows)
        return CheckedQuery(
            sql=query.sql(dialect=self.dialect),
            tables=tuple(sorted({g.name for _, g in refs})),
            max_rows=max_rows,
            fetch_limit=fetch_limit,
        )

    def _check_columns(self, query: exp.Query) -> None:
        try:
            qualify(
                query.copy(),
                schema=self._schema,
                dialect=self.dialect,
                validate_qualify_columns=True,
                identify=False,
                quote_identifiers=False,
            )
        except OptimizeError as exc:
            message = str(exc).split(". Line")[0]
            raise QueryRefused(f"{message} (only granted columns can be used)") from exc
        except (SqlglotError, RecursionError) as exc:
            raise QueryRefused(f"cannot analyse the query: {exc or 'nested too deeply'}") from exc

    def _derived_table(
        self, table: exp.Table, grant: TableGrant, caller: SqlCaller, params: Mapping[str, Any]
    ) -> exp.Subquery:
        where = f"grants.tables.{grant.name}"
        columns: list[exp.Expr] = []
        for column in grant.columns:
            mask = grant.masks.get(column)
            if mask is not None and not (mask.unless_roles & caller.roles):
                masked = _bind(mask.expr, params, f"{where}.masks.{column}")
                columns.append(exp.alias_(masked, column))
            else:
                columns.append(exp.column(column))
        predicates: list[exp.Expr] = []
        if grant.row_filter is not None:
            predicates.append(_bind(grant.row_filter, params, f"{where}.row_filter"))
        if grant.role_filters:
            granted = [
                _bind(f, params, f"{where}.role_filters.{role}")
                for role, f in sorted(grant.role_filters.items())
                if role in caller.roles
            ]
            predicates.append(exp.or_(*granted) if granted else exp.false())
        inner = exp.select(*columns).from_(exp.to_table(grant.name))
        if predicates:
            inner = inner.where(exp.and_(*(exp.paren(p, copy=False) for p in predicates)))
        return exp.Subquery(
            this=inner, alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))
        )

    @staticmethod
    def _limit_value(node: exp.Expr | None, clause: str) -> int | None:
        if node is None:
            return None
        value = node.args.get("expression")
        if not isinstance(value, exp.Literal) or value.is_string or not str(value.this).isdigit():
            raise QueryRefused(f"{clause} must be a whole number")
        return int(value.this)

    def _apply_limit(self, query: exp.Query, max_rows: int) -> int:
        if query.args.get("fetch"):
            raise QueryRefused("FETCH is not allowed; use LIMIT")
        limit = self._limit_value(query.args.get("limit"), "LIMIT")
        self._limit_value(query.args.get("offset"), "OFFSET")
        if limit is not None and limit <= max_rows:
            return limit
        query.set("limit", exp.Limit(expression=exp.Literal.number(max_rows + 1)))
        return max_rows + 1

    # --- running -------------------------------------------------------------------------

    def execute(self, sql: str, caller: SqlCaller) -> QueryResult:
        """Check, rewrite and run an agent-written query."""
        return self._run(self.check(sql, caller))

    def run(
        self, query: NamedQuery[P], params: P | Mapping[str, Any], caller: SqlCaller
    ) -> QueryResult:
        """Run a named query with validated parameters, through the same checks."""
        return self.execute(query.render(params, dialect=self.dialect), caller)

    def _run(self, checked: CheckedQuery) -> QueryResult:
        if self._sqlite_path is not None:
            columns, rows = self._run_sqlite(checked)
        else:
            columns, rows = self._run_postgres(checked)
        truncated = len(rows) > checked.max_rows
        rows = rows[: checked.max_rows]
        return QueryResult(columns, rows, len(rows), truncated, checked.sql)

    def _authorizer(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_RECURSIVE):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_READ:
            if db is None:  # a CTE or derived table, not a stored table
                return sqlite3.SQLITE_OK
            readable = db == "main" and (arg1 or "").lower() in self._readable
            return sqlite3.SQLITE_OK if readable else sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION:
            return (
                sqlite3.SQLITE_DENY if (arg2 or "").lower() in _SQLITE_DENIED else sqlite3.SQLITE_OK
            )
        return sqlite3.SQLITE_DENY

    def _run_sqlite(self, checked: CheckedQuery) -> tuple[list[str], list[tuple[Any, ...]]]:
        assert self._sqlite_path is not None
        deadline = time.monotonic() + self.grants.timeout_seconds
        conn = sqlite3.connect(
            f"file:{self._sqlite_path}?mode=ro", uri=True, timeout=self.grants.timeout_seconds
        )
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.set_authorizer(self._authorizer)
            conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 2000)
            try:
                cursor = conn.execute(checked.sql)
                rows = cursor.fetchmany(checked.fetch_limit)
            except sqlite3.OperationalError as exc:
                timed_out = "interrupted" in str(exc)
                reason = (
                    f"timed out after {self.grants.timeout_seconds:g}s" if timed_out else str(exc)
                )
                raise QueryFailed(f"query failed: {reason}", timed_out=timed_out) from exc
            except sqlite3.DatabaseError as exc:
                raise QueryFailed(f"query failed: {exc}") from exc
            columns = [d[0] for d in cursor.description or ()]
            return columns, [tuple(r) for r in rows]
        finally:
            conn.close()

    def _run_postgres(self, checked: CheckedQuery) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        assert self._engine is not None
        timeout_ms = max(1, int(self.grants.timeout_seconds * 1000))
        with self._engine.connect() as conn:
            dbapi = conn.connection.driver_connection
            assert isinstance(dbapi, psycopg.Connection)
            try:
                with dbapi.transaction(), dbapi.cursor() as cursor:
                    cursor.execute("SET TRANSACTION READ ONLY")
                    cursor.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                    cursor.execute(checked.sql.encode())
                    rows = cursor.fetchmany(checked.fetch_limit)
                    columns = [d.name for d in cursor.description or ()]
            except psycopg.errors.QueryCanceled as exc:
                raise QueryFailed(
                    f"query failed: timed out after {self.grants.timeout_seconds:g}s",
                    timed_out=True,
                ) from exc
            except psycopg.Error as exc:
                raise QueryFailed(f"query failed: {str(exc).splitlines()[0]}") from exc
            finally:
                conn.rollback()
        return columns, [tuple(r) for r in rows]


_SQLITE_DENIED = frozenset(
    {
        "load_extension",
        "readfile",
        "writefile",
        "edit",
        "fts3_tokenizer",
        "zipfile",
        "sqlar_compress",
        "sqlar_uncompress",
    }
)


class NamedQuery(Generic[P]):
    """A named, parameterised query: the typed alternative to free-form SQL.

    `sql` uses `:name` placeholders; each must be a field of the `params` model. Values are
    validated by the model and inlined as SQL literals on the AST (never by string pasting),
    then the query goes through the same checks, grants and limits as agent-written SQL.
    """

    def __init__(self, name: str, sql: str, params: type[P], *, description: str = "") -> None:
        self.name = name
        self.sql = sql
        self.params = params
        self.description = description
        try:
            parsed = sqlglot.parse_one(sql)
        except ParseError as exc:
            raise InvalidInput(f"query {name}: cannot parse: {exc}", field="sql") from exc
        self._templates: dict[str, exp.Expr] = {}
        self.placeholders = sorted({str(p.this) for p in parsed.find_all(exp.Placeholder)})
        missing = [p for p in self.placeholders if p not in params.model_fields]
        if missing:
            raise InvalidInput(
                f"query {name}: parameter :{missing[0]} is not a field of {params.__name__}",
                field="sql",
            )

    def render(self, params: P | Mapping[str, Any], *, dialect: str) -> str:
        """The query with validated values inlined, as SQL text for `dialect`."""
        try:
            model = (
                params if isinstance(params, self.params) else self.params.model_validate(params)
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(f"query {self.name}: {field}: {first['msg']}", field=field) from exc
        values = model.model_dump()
        template = self._templates.get(dialect)
        if template is None:  # parsed once per dialect; `_bind` works on a copy
            template = self._templates[dialect] = sqlglot.parse_one(self.sql, read=dialect)
        return _bind(template, values, f"query {self.name}").sql(dialect=dialect)


__all__ = [
    "CheckedQuery",
    "GovernedSQL",
    "NamedQuery",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
]
