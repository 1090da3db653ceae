"""The grant format of the governed SQL tool: which tables and columns an agent may read, the
row filters and column masks applied, and the limits. YAML-friendly and schema-independent:

    max_rows: 200              # rows returned at most (a larger or missing LIMIT is capped)
    timeout_seconds: 5
    functions: [julianday]     # extra SQL functions to allow (beyond the built-in allow-list)
    tables:
      projects:
        columns: [id, name, region, status, budget, created_at]
        row_filter: "tenant_id = :tenant"          # always applied
        role_filters:                               # optional: rows each role may see
          regional_manager: "region = :region"      #   (OR over the caller's roles;
          analyst: "TRUE"                           #    no matching role → no rows)
        masks:
          budget: {expr: "NULL", unless_roles: [finance]}
      contacts:
        columns: [id, project_id, name, email]
        row_filter: "project_id IN (SELECT id FROM projects WHERE tenant_id = :tenant)"
        masks:
          email: "'***'"                            # shorthand: masked for everyone

Filters and masks are SQL expressions over the table's own columns (they may use columns that
are not granted, e.g. `tenant_id`, and subqueries); `:name` parameters come from the caller:
`:tenant`, `:user`, and any caller attribute (`:region`). Table and column names are plain
lower-case identifiers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlglot
import yaml
from sqlglot import exp
from sqlglot.errors import ParseError

from keel.errors import InvalidInput, SpecError, SpecProblem

_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_SYSTEM = re.compile(r"^(?:sqlite_|pg_|information_schema$)")
ScalarParam = str | int | float | bool


@dataclass(frozen=True)
class Mask:
    """Replace a column's value with `expr` unless the caller holds one of `unless_roles`."""

    expr: exp.Expr
    unless_roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TableGrant:
    name: str
    columns: tuple[str, ...]
    row_filter: exp.Expr | None = None
    role_filters: Mapping[str, exp.Expr] = field(default_factory=dict)
    masks: Mapping[str, Mask] = field(default_factory=dict)


@dataclass(frozen=True)
class SqlCaller:
    """On whose behalf the query runs; supplies the `:parameters` of filters and masks."""

    tenant: str
    user: str = ""
    roles: frozenset[str] = frozenset()
    attributes: Mapping[str, ScalarParam] = field(default_factory=dict)

    def params(self) -> dict[str, ScalarParam]:
        return {**self.attributes, "tenant": self.tenant, "user": self.user}


@dataclass(frozen=True)
class SqlGrants:
    tables: Mapping[str, TableGrant]
    max_rows: int = 200
    timeout_seconds: float = 5.0
    functions: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path, *, dialect: str) -> SqlGrants:
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise SpecError([SpecProblem(str(path), "", f"cannot read grants: {exc}")]) from exc
        return cls.from_mapping(data, dialect=dialect, source=str(path))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, dialect: str, source: str = "grants"
    ) -> SqlGrants:
        """Parse and check a grant mapping; SpecError lists every problem."""
        problems: list[SpecProblem] = []
        if not isinstance(data, Mapping):
            raise SpecError([SpecProblem(source, "", "grants must be a mapping")])
        unknown = set(data) - {"tables", "max_rows", "timeout_seconds", "functions"}
        for key in sorted(unknown):
            problems.append(
                SpecProblem(
                    source, key, "unknown key (tables, max_rows, timeout_seconds, functions)"
                )
            )
        max_rows = data.get("max_rows", 200)
        if (
            isinstance(max_rows, bool)
            or not isinstance(max_rows, int)
            or not 1 <= max_rows <= 100_000
        ):
            problems.append(SpecProblem(source, "max_rows", "must be an integer from 1 to 100000"))
        timeout = data.get("timeout_seconds", 5.0)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= 600
        ):
            problems.append(
                SpecProblem(source, "timeout_seconds", "must be a number from 0 to 600")
            )
        functions = data.get("functions") or []
        if not isinstance(functions, list) or not all(
            isinstance(f, str) and _IDENT.fullmatch(f.lower()) for f in functions
        ):
            problems.append(SpecProblem(source, "functions", "must be a list of function names"))
            functions = []
        tables: dict[str, TableGrant] = {}
        raw_tables = data.get("tables")
        if not isinstance(raw_tables, Mapping) or not raw_tables:
            problems.append(SpecProblem(source, "tables", "grant at least one table"))
            raw_tables = {}
        for name, spec in raw_tables.items():
            try:
                tables[str(name)] = _table(str(name), spec, dialect)
            except InvalidInput as exc:
                problems.append(SpecProblem(source, exc.field or f"tables.{name}", exc.message))
        if problems:
            raise SpecError(problems)
        return cls(
            tables=tables,
            max_rows=int(max_rows),
            timeout_seconds=float(timeout),
            functions=frozenset(f.lower() for f in functions),
        )


def _expression(text: Any, where: str, dialect: str) -> exp.Expr:
    if isinstance(text, bool):
        text = "TRUE" if text else "FALSE"
    if not isinstance(text, str | int | float) or str(text).strip() == "":
        raise InvalidInput(f"{where}: expected an SQL expression", field=where)
    try:
        statements = sqlglot.parse(f"SELECT {text}", read=dialect)
    except ParseError as exc:
        raise InvalidInput(f"{where}: cannot parse {text!r}: {exc}", field=where) from exc
    select = statements[0] if len(statements) == 1 else None
    if (
        not isinstance(select, exp.Select)
        or len(select.expressions) != 1
        or select.args.get("from_")
    ):
        raise InvalidInput(f"{where}: expected one SQL expression, got {text!r}", field=where)
    parsed: exp.Expr = select.expressions[0]
    if isinstance(parsed, exp.Alias):
        raise InvalidInput(f"{where}: expected an expression without an alias", field=where)
    return parsed


def _table(name: str, spec: Any, dialect: str) -> TableGrant:
    where = f"tables.{name}"
    if not _IDENT.fullmatch(name) or _SYSTEM.match(name):
        raise InvalidInput(
            f"{where}: table names are lower-case identifiers, not system catalogs", field=where
        )
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"{where}: expected a mapping with columns", field=where)
    unknown = set(spec) - {"columns", "row_filter", "role_filters", "masks"}
    if unknown:
        raise InvalidInput(
            f"{where}.{sorted(unknown)[0]}: unknown key", field=f"{where}.{sorted(unknown)[0]}"
        )
    columns = spec.get("columns")
    if (
        not isinstance(columns, list)
        or not columns
        or not all(isinstance(c, str) and _IDENT.fullmatch(c) for c in columns)
    ):
        raise InvalidInput(
            f"{where}.columns: a non-empty list of lower-case column names",
            field=f"{where}.columns",
        )
    row_filter = spec.get("row_filter")
    role_filters = spec.get("role_filters") or {}
    masks = spec.get("masks") or {}
    if not isinstance(role_filters, Mapping) or not isinstance(masks, Mapping):
        raise InvalidInput(f"{where}: role_filters and masks must be mappings", field=where)
    parsed_masks: dict[str, Mask] = {}
    for column, mask in masks.items():
        mwhere = f"{where}.masks.{column}"
        if column not in columns:
            raise InvalidInput(f"{mwhere}: not a granted column", field=mwhere)
        if isinstance(mask, Mapping):
            roles = mask.get("unless_roles") or []
            if not isinstance(roles, list):
                raise InvalidInput(f"{mwhere}.unless_roles: must be a list", field=mwhere)
            parsed_masks[column] = Mask(
                _expression(mask.get("expr"), mwhere, dialect), frozenset(map(str, roles))
            )
        else:
            parsed_masks[column] = Mask(_expression(mask, mwhere, dialect))
    return TableGrant(
        name=name,
        columns=tuple(dict.fromkeys(columns)),
        row_filter=None
        if row_filter is None
        else _expression(row_filter, f"{where}.row_filter", dialect),
        role_filters={
            str(role): _expression(f, f"{where}.role_filters.{role}", dialect)
            for role, f in role_filters.items()
        },
        masks=parsed_masks,
    )


def is_system_table(name: str) -> bool:
    return bool(_SYSTEM.match(name.lower()))


__all__ = ["Mask", "ScalarParam", "SqlCaller", "SqlGrants", "TableGrant", "is_system_table"]
