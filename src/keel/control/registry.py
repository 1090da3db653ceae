"""The tool registry: every tool an agent may call, with what the control plane needs to
govern it — version, kind, input schema, credential, rate limit, unit cost, the tenants and
tiers it is enabled for, deprecation, sensitivity and tags.

Two sources, one namespace (tool names are unique in a deployment):

- `tools.yaml` in an agents folder (next to the agent sub-folders): deployment-level tools of
  kind `python` (`function: module:attr`), `http` (one OpenAPI operation), `sql` (governed SQL
  over a database) or `mcp` (tools of an MCP server). Agents name them in `agent.yaml`.
- functions in an agent's `tools.py`, optionally decorated with `@keel_tool(...)` to declare the
  same governance fields; an undecorated function is a `python` tool with the defaults.

    tools:
      - name: crm_company
        kind: http
        openapi: crm.openapi.yaml        # relative to this file
        operation: getCompany            # operationId
        credential: crm-token            # vault secret, per tenant
        auth: {header: Authorization, scheme: Bearer}
        rate_limit: 30/minute            # or {capacity: 30, refill_per_second: 0.5}
        cost_usd: 0.002                  # per call, counted against budgets
        tiers: [pro, enterprise]         # omit: every tier
        tenants: [acme]                  # omit: every tenant
        sensitivity: high                # low | medium | high (a Cedar attribute)
        tags: [crm, external]
        deprecated: {message: "use crm_company_v2", sunset: 2027-01-01, replacement: crm_company_v2}

A disabled tool (`enabled: false`) or one past its deprecation `sunset` cannot be named by an
agent (the loader reports `agent.yaml:tools.N: tool 'x' is disabled`); one not enabled for a
run's tenant or tier is hidden from that run's model and refused if called.

Nothing here runs a tool; `keel.control.gate` does, through the registry.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_ai import Tool

from keel.agents.loader import LoadedAgent, ToolDef
from keel.control.cedar_schema import ToolDescriptor
from keel.errors import SpecError, SpecProblem
from keel.settings import RateLimitSetting

REGISTRY_FILE = "tools.yaml"
META_ATTRIBUTE = "__keel_tool__"
TOOL_KINDS = ("python", "http", "sql", "mcp")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(second|sec|s|minute|min|m|hour|h|day|d)\s*$")
_PERIODS = {"second": 1, "sec": 1, "s": 1, "minute": 60, "min": 60, "m": 60, "hour": 3600,
            "h": 3600, "day": 86400, "d": 86400}  # fmt: skip
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

F = TypeVar("F", bound=Callable[..., Any])
Sensitivity = Literal["low", "medium", "high"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Deprecation(_Strict):
    """A deprecated tool still works until `sunset` (if any); after it, it is unavailable."""

    message: str = ""
    since: date | None = None
    sunset: date | None = None
    replacement: str | None = None

    def removed(self, today: date) -> bool:
        return self.sunset is not None and today >= self.sunset

    def describe(self) -> str:
        parts = ["is deprecated"]
        if self.since:
            parts.append(f"since {self.since.isoformat()}")
        if self.sunset:
            parts.append(f"(removed on {self.sunset.isoformat()})")
        text = " ".join(parts)
        if self.replacement:
            text += f"; use {self.replacement}"
        if self.message:
            text += f": {self.message}"
        return text


def parse_rate_limit(value: Any) -> Any:
    """`"30/minute"` → a bucket of 30 refilled at 0.5/s; mappings pass through."""
    if isinstance(value, str):
        match = _RATE.match(value)
        if not match:
            raise ValueError(f"{value!r} is not like '30/minute' (second, minute, hour, day)")
        count = float(match.group(1))
        if count <= 0:
            raise ValueError("the count must be positive")
        return {"capacity": count, "refill_per_second": count / _PERIODS[match.group(2)]}
    return value


class ToolOptions(_Strict):
    """The governance fields of a tool, as `tools.yaml` and `@keel_tool` declare them."""

    version: str = "1"
    description: str | None = None
    credential: str | None = None
    rate_limit: RateLimitSetting | None = None
    cost_usd: Decimal = Field(default=Decimal(0), ge=0, le=1_000_000)
    tenants: tuple[str, ...] | None = None
    tiers: tuple[str, ...] | None = None
    enabled: bool = True
    deprecated: Deprecation | None = None
    sensitivity: Sensitivity = "low"
    tags: tuple[str, ...] = ()
    requires_approval: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)
    output_schema: dict[str, Any] | None = None

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return parse_rate_limit(value)

    @field_validator("deprecated", mode="before")
    @classmethod
    def _deprecated(cls, value: Any) -> Any:
        if value is True:
            return {}
        if value is False:
            return None
        if isinstance(value, str):
            return {"message": value}
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int | float) else value


class HeaderAuth(_Strict):
    """How an http tool's credential is sent: `header: <scheme> <secret>` (no scheme: the
    bare secret)."""

    header: str = "Authorization"
    scheme: str | None = "Bearer"

    def value(self, secret: str) -> str:
        return f"{self.scheme} {secret}" if self.scheme else secret


class McpServer(_Strict):
    """An MCP server: a local command (stdio) or a streamable HTTP `url`."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    timeout_seconds: float = Field(default=30, gt=0, le=600)


class ToolEntry(ToolOptions):
    """One entry of `tools.yaml`."""

    name: str
    kind: Literal["python", "http", "sql", "mcp"] = "python"
    # python
    function: str | None = None
    # http
    openapi: str | None = None
    operation: str | None = None
    base_url: str | None = None
    auth: HeaderAuth = Field(default_factory=HeaderAuth)
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    # sql
    database: str | None = None
    grants: str | None = None
    # mcp
    server: McpServer | None = None
    tool: str | None = None
    input_schema: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolSpec:
    """A registered tool. `function` implements python, http and sql tools (http and sql
    ones are generated); `schema_validated` is True when Pydantic validates the arguments
    from the function signature (otherwise the gate validates them against `input_schema`)."""

    name: str
    kind: str
    options: ToolOptions
    description: str
    input_schema: dict[str, Any]
    source: str
    function: Callable[..., Any] | None = None
    schema_validated: bool = True
    auth: HeaderAuth | None = None
    mcp: McpServer | None = None
    mcp_tool: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cost_usd(self) -> Decimal:
        return self.options.cost_usd

    def unavailable(self, today: date) -> str | None:
        """Why no agent may use this tool at all (disabled, past its sunset), or None."""
        if not self.options.enabled:
            return "is disabled"
        dep = self.options.deprecated
        if dep is not None and dep.removed(today):
            return dep.describe()
        return None

    def refusal(self, tenant_id: str, tier: str, today: date) -> str | None:
        """Why this tenant (on this tier) may not use the tool, or None when it may."""
        reason = self.unavailable(today)
        if reason is not None:
            return f"tool {self.name!r} {reason}"
        tenants, tiers = self.options.tenants, self.options.tiers
        if tenants is not None and tenant_id not in tenants:
            return f"tool {self.name!r} is not enabled for tenant {tenant_id!r}"
        if tiers is not None and tier not in tiers:
            return f"tool {self.name!r} is not enabled on the {tier!r} tier"
        return None

    def descriptor(self) -> ToolDescriptor:
        """What the Cedar schema knows: kind, tags, `version`, `sensitivity`, `cost_usd`
        (rounded up to Cedar's 4 decimals) and the declared attributes; argument types come
        from the input schema."""
        cost = self.options.cost_usd.quantize(Decimal("0.0001"), rounding=ROUND_CEILING)
        attributes: dict[str, Any] = {
            "version": self.options.version,
            "sensitivity": self.options.sensitivity,
            "cost_usd": float(cost),
            **self.options.attributes,
        }
        return ToolDescriptor(
            name=self.name,
            kind=self.kind,
            attributes=attributes,
            tags=tuple(self.options.tags),
            arguments=cedar_arguments(self.input_schema),
        )

    def tool_def(self) -> ToolDef:
        """The loader's view of a deployment-level tool."""
        assert self.function is not None, "mcp tools come from their toolset, not a ToolDef"
        return ToolDef(
            self.name,
            self.function,
            self.options.requires_approval,
            self.description,
            json_schema=None if self.schema_validated else self.input_schema,
            unavailable=self.unavailable(date.today()),
        )


# --- the decorator ------------------------------------------------------------------------


@overload
def keel_tool(fn: F, /) -> F: ...
@overload
def keel_tool(*, kind: str = "python", **options: Any) -> Callable[[F], F]: ...
def keel_tool(fn: Any = None, /, *, kind: str = "python", **options: Any) -> Any:
    """Declare a `tools.py` function's governance fields (the `ToolOptions` names:
    `cost_usd`, `credential`, `rate_limit`, `sensitivity`, `tags`, `tiers`, …) and its kind
    label (`python`, `sql` or `http` for a function that calls out). Only attaches data: the
    registry checks it when the deployment loads and reports `file:tool.field: reason`."""

    def attach(function: F) -> F:
        setattr(function, META_ATTRIBUTE, {"kind": kind, **options})
        return function

    return attach(fn) if fn is not None else attach


# --- schemas ------------------------------------------------------------------------------


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(8):
        if "$ref" in schema:
            name = str(schema["$ref"]).rsplit("/", 1)[-1]
            schema = root.get("$defs", {}).get(name, {})
            continue
        options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
            continue
        break
    return schema


def _nullable(schema: Mapping[str, Any]) -> bool:
    return any(o.get("type") == "null" for o in schema.get("anyOf", [])) or schema.get(
        "nullable", False
    )


def cedar_arguments(schema: Mapping[str, Any]) -> dict[str, str]:
    """Cedar argument types for the JSON-schema properties that have one: strings → String,
    integers → Long, booleans → Bool, numbers → Decimal, arrays of strings/integers →
    Set<…>; `?` when not required or nullable. Others are not visible to policies."""
    required = set(schema.get("required", []))
    out: dict[str, str] = {}
    for name, raw in (schema.get("properties") or {}).items():
        if not _IDENT.match(name):
            continue
        prop = _resolve(raw, schema)
        kind = prop.get("type")
        cedar: str | None = None
        if kind == "string" or ("enum" in prop and all(isinstance(v, str) for v in prop["enum"])):
            cedar = "String"
        elif kind == "integer":
            cedar = "Long"
        elif kind == "boolean":
            cedar = "Bool"
        elif kind == "number":
            cedar = "Decimal"
        elif kind == "array":
            item = _resolve(prop.get("items") or {}, schema).get("type")
            cedar = {"string": "Set<String>", "integer": "Set<Long>"}.get(str(item))
        if cedar is None:
            continue
        optional = name not in required or _nullable(raw)
        out[name] = cedar + ("?" if optional else "")
    return out


def function_schema(function: Callable[..., Any]) -> tuple[dict[str, Any], str]:
    """The JSON schema of a `(ctx, ...)` tool function's arguments, and its description."""
    tool = Tool(function, takes_ctx=True)
    return dict(tool.tool_def.parameters_json_schema), tool.tool_def.description or ""


# --- loading ------------------------------------------------------------------------------


def _options(raw: Mapping[str, Any], where: str, problems: list[SpecProblem]) -> ToolOptions:
    try:
        return ToolOptions.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(SpecProblem(where, loc, err["msg"]))
        return ToolOptions()


def _import(ref: str) -> Callable[..., Any]:
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"{ref!r} is not 'module:function'")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{ref} is not callable")
    return target  # type: ignore[no-any-return]


def _python_spec(entry: ToolEntry, base: Path, where: str) -> ToolSpec:
    if not entry.function:
        raise ValueError("function: a python tool needs 'module:function'")
    if str(base) not in sys.path:
        sys.path.append(str(base))  # as for agents: shared `_`-prefixed sibling folders
    try:
        function = _import(entry.function)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"function: cannot import {entry.function!r}: {exc}") from exc
    schema, doc = function_schema(function)
    return ToolSpec(
        entry.name, "python", _as_options(entry), entry.description or doc.split("\n\n")[0],
        schema, where, function=function,
    )  # fmt: skip


def _as_options(entry: ToolEntry) -> ToolOptions:
    return ToolOptions.model_validate(
        {
            k: v
            for k, v in entry.model_dump(exclude_unset=True).items()
            if k in ToolOptions.model_fields
        }
    )


def _entry_spec(entry: ToolEntry, base: Path, where: str) -> list[ToolSpec]:
    if entry.kind == "python":
        return [_python_spec(entry, base.resolve(), where)]
    if entry.kind == "http":
        from keel.control.http_tool import http_spec

        return [http_spec(entry, _as_options(entry), base, where)]
    if entry.kind == "sql":
        from keel.control.sql_tool import sql_spec

        return [sql_spec(entry, _as_options(entry), base, where)]
    from keel.control.mcp import mcp_spec

    return [mcp_spec(entry, _as_options(entry), where)]


def load_tools_file(path: Path) -> list[ToolSpec]:
    """The tools declared in one `tools.yaml`; SpecError lists every problem."""
    rel = path.name if path.parent == Path(".") else f"{path.parent.name}/{path.name}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError([SpecProblem(rel, "-", f"cannot read: {exc}")]) from exc
    if data is None:
        return []
    items = data.get("tools") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise SpecError([SpecProblem(rel, "tools", "expected a list of tools under 'tools:'")])
    problems: list[SpecProblem] = []
    specs: list[ToolSpec] = []
    for i, raw in enumerate(items):
        where = f"tools.{i}"
        try:
            entry = ToolEntry.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(SpecProblem(rel, f"{where}.{loc}" if loc else where, err["msg"]))
            continue
        if not _NAME.match(entry.name):
            problems.append(SpecProblem(rel, f"{where}.name", "a letter, then letters, digits, _"))
            continue
        try:
            specs += _entry_spec(entry, path.parent, f"{rel}:{where}")
        except SpecError as exc:
            problems += exc.problems
        except ValueError as exc:
            field_name, _, reason = str(exc).partition(": ")
            problems.append(SpecProblem(rel, f"{where}.{field_name}", reason or str(exc)))
    if problems:
        raise SpecError(problems)
    return specs


_loaded: dict[tuple[tuple[str, int, int], ...], dict[str, ToolSpec]] = {}


def load_deployment_tools(dirs: Sequence[Path]) -> dict[str, ToolSpec]:
    """Every `tools.yaml` in DIRS (the agents folders), by tool name. Loaded once per process
    while the files are unchanged (the catalog and the gate both ask; MCP entries contact
    their servers)."""
    files = [base / REGISTRY_FILE for base in dirs]
    key = tuple(
        (str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files if f.is_file()
    )
    if key in _loaded:
        return dict(_loaded[key])
    specs = _load_deployment_tools(dirs)
    _loaded[key] = specs
    return dict(specs)


def _load_deployment_tools(dirs: Sequence[Path]) -> dict[str, ToolSpec]:
    specs: dict[str, ToolSpec] = {}
    problems: list[SpecProblem] = []
    for base in dirs:
        path = base / REGISTRY_FILE
        if not path.is_file():
            continue
        try:
            loaded = load_tools_file(path)
        except SpecError as exc:
            problems += exc.problems
            continue
        for spec in loaded:
            if spec.name in specs:
                problems.append(
                    SpecProblem(
                        spec.source,
                        "name",
                        f"duplicate tool {spec.name!r} (first in {specs[spec.name].source})",
                    )
                )
            specs[spec.name] = spec
    if problems:
        raise SpecError(problems)
    return specs


def deployment_tool_defs(specs: Mapping[str, ToolSpec]) -> dict[str, ToolDef]:
    """The loader's `tool_registry`: deployment tools agents may name in `agent.yaml`."""
    return {name: spec.tool_def() for name, spec in specs.items() if spec.function is not None}


def _agent_spec(loaded: LoadedAgent, tool: ToolDef, problems: list[SpecProblem]) -> ToolSpec:
    where = f"{loaded.folder.name}/tools.py"
    raw = dict(getattr(tool.function, META_ATTRIBUTE, None) or {})
    kind = str(raw.pop("kind", "python"))
    if kind not in ("python", "sql", "http"):
        problems.append(SpecProblem(where, f"{tool.name}.kind", "python, sql or http"))
    options = _options(raw, where, problems)
    schema, doc = function_schema(tool.function)
    description = options.description or tool.description or doc.split("\n\n")[0]
    return ToolSpec(tool.name, kind, options, description, schema, where, function=tool.function)


class ToolRegistry:
    """The deployment's tools by name (deployment-level and every agent's own)."""

    def __init__(self, specs: Mapping[str, ToolSpec]) -> None:
        self._specs = dict(specs)

    @classmethod
    def build(
        cls, deployment: Mapping[str, ToolSpec], agents: Iterable[LoadedAgent]
    ) -> ToolRegistry:
        """Add each agent's own tools to the deployment's; the same name in two agents must
        be the same function or carry the same declaration."""
        specs = dict(deployment)
        problems: list[SpecProblem] = []
        for loaded in agents:
            for name, tool in loaded.tools.items():
                if name in deployment:
                    continue
                spec = _agent_spec(loaded, tool, problems)
                known = specs.get(name)
                if (
                    known is not None
                    and known.function is not tool.function
                    and (known.options != spec.options or known.input_schema != spec.input_schema)
                ):
                    problems.append(
                        SpecProblem(
                            spec.source,
                            name,
                            f"tool {name!r} is declared differently in "
                            f"{known.source}; give one of them another name",
                        )
                    )
                    continue
                specs.setdefault(name, spec)
        if problems:
            raise SpecError(problems)
        return cls(specs)

    def get(self, name: str) -> ToolSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ToolSpec]:
        return iter(self._specs[name] for name in sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def descriptors(self) -> list[ToolDescriptor]:
        return [spec.descriptor() for spec in self]


__all__ = [
    "META_ATTRIBUTE",
    "REGISTRY_FILE",
    "TOOL_KINDS",
    "Deprecation",
    "HeaderAuth",
    "McpServer",
    "ToolEntry",
    "ToolOptions",
    "ToolRegistry",
    "ToolSpec",
    "cedar_arguments",
    "deployment_tool_defs",
    "keel_tool",
    "load_deployment_tools",
    "load_tools_file",
    "parse_rate_limit",
]
