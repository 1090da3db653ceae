"""The Cedar schema Keel policies are validated against, generated from tool descriptors.

Model (namespace `Keel`):

- principal `Keel::Agent::"<agent>"` with `name: String` and `user: Keel::User` — the agent
  acts for a user: `Keel::User::"<tenant>/<user>"` with `tenant`, `user`, `roles: Set<String>`,
  `tier`. Policies read e.g. `principal.user.roles.contains("finance")`.
- one action per tool, `Keel::Action::"<tool>"`, applying to Agent → Tool.
- resource `Keel::Tool::"<tool>"` with `name`, `kind`, `tags: Set<String>` and the descriptor's
  own attributes. An attribute only some tools declare is optional in the schema, so policies
  must guard it: `resource has cost && resource.cost.greaterThan(decimal("0.5"))`.
- context (every action): `now` (Cedar `datetime`, UTC — use `context.now.toTime() >=
  duration("8h")` for hours, `context.now < datetime("2027-01-01")` for dates),
  `budget_remaining_pct: Long` (0–100), `has_human_approval: Bool`, `throttled: Bool`,
  `lane: String` ("interactive", "batch", "eval", …) and `args`, a record of the tool call's
  declared arguments (`context.args.amount > 1000`).

Attribute values map to Cedar types: str → String, bool → Bool, int → Long, float → decimal
(at most 4 decimals; Cedar has no floating point), list of str / int → Set<String> / Set<Long>.
Argument types are named: String, Long, Bool, Decimal, Set<String>, Set<Long>; a trailing "?"
makes an argument optional (policies then need `context.args has name`).

`validate_policies` against this schema rejects a policy naming an unknown tool action, a
misspelt attribute or a type error; `keel.control.policy` adds the check for unknown
`Keel::Tool::"…"` literals, which the Cedar validator cannot see.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import cedarpy
import yaml

from keel.errors import InvalidInput, SpecError, SpecProblem

NAMESPACE = "Keel"
RESERVED_TOOL_ATTRIBUTES = frozenset({"name", "kind", "tags"})
CONTEXT_FIELDS = ("now", "budget_remaining_pct", "has_human_approval", "throttled", "lane", "args")
ARGUMENT_TYPES = ("String", "Long", "Bool", "Decimal", "Set<String>", "Set<Long>")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_DECIMAL_LIMIT = Decimal("922337203685477.5807")

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int]


@dataclass(frozen=True)
class ToolDescriptor:
    """What the policy layer knows about a tool: its name, kind, attributes and argument types.

    The tool registry produces these; `keel policy` reads them from YAML (a list of mappings
    with the same keys).
    """

    name: str
    kind: str = "function"
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    arguments: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str = "tools") -> ToolDescriptor:
        if not isinstance(data, Mapping):
            raise SpecError([SpecProblem(where, "", "each tool must be a mapping")])
        unknown = set(data) - {"name", "kind", "attributes", "tags", "arguments", "description"}
        if unknown:
            raise SpecError(
                [
                    SpecProblem(
                        where,
                        sorted(unknown)[0],
                        "unknown key (name, kind, attributes, tags, arguments)",
                    )
                ]
            )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise SpecError([SpecProblem(where, "name", "a tool needs a name")])
        attributes = data.get("attributes") or {}
        arguments = data.get("arguments") or {}
        tags = data.get("tags") or []
        if not isinstance(attributes, Mapping) or not isinstance(arguments, Mapping):
            raise SpecError([SpecProblem(where, name, "attributes and arguments must be mappings")])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise SpecError([SpecProblem(where, f"{name}.tags", "tags must be a list of strings")])
        return cls(
            name=name,
            kind=str(data.get("kind", "function")),
            attributes=dict(attributes),
            tags=tuple(tags),
            arguments={str(k): str(v) for k, v in arguments.items()},
        )


def load_tool_descriptors(path: Path) -> list[ToolDescriptor]:
    """Tools from a YAML file: a list of tool mappings, or `{tools: [...]}`."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError([SpecProblem(str(path), "", f"cannot read tools: {exc}")]) from exc
    if isinstance(data, Mapping):
        data = data.get("tools")
    if not isinstance(data, list):
        raise SpecError([SpecProblem(str(path), "tools", "expected a list of tools")])
    return [ToolDescriptor.from_mapping(item, where=f"{path}") for item in data]


# --- values -----------------------------------------------------------------------------


def _decimal_literal(value: float | int | str | Decimal, where: str) -> str:
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidInput(f"{where}: {value!r} is not a decimal", field=where) from exc
    if not number.is_finite() or abs(number) > _DECIMAL_LIMIT:
        raise InvalidInput(f"{where}: {value!r} is out of Cedar's decimal range", field=where)
    if number != number.quantize(Decimal("0.0001")):
        raise InvalidInput(f"{where}: {value!r} has more than 4 decimals", field=where)
    return f"{number:.4f}"


def _type_of(value: Any, where: str) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "Boolean"}
    if isinstance(value, str):
        return {"type": "String"}
    if isinstance(value, int):
        return {"type": "Long"}
    if isinstance(value, float):
        _decimal_literal(value, where)
        return {"type": "Extension", "name": "decimal"}
    if isinstance(value, list | tuple | set | frozenset):
        if all(isinstance(v, str) for v in value):
            return {"type": "Set", "element": {"type": "String"}}
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return {"type": "Set", "element": {"type": "Long"}}
    raise InvalidInput(
        f"{where}: unsupported value {value!r} (use a string, bool, integer, decimal or a "
        "list of strings or integers)",
        field=where,
    )


def _argument_type(spec: str, where: str) -> tuple[dict[str, Any], bool]:
    optional = spec.endswith("?")
    name = spec.rstrip("?").strip()
    cedar: dict[str, dict[str, Any]] = {
        "String": {"type": "String"},
        "Long": {"type": "Long"},
        "Bool": {"type": "Boolean"},
        "Decimal": {"type": "Extension", "name": "decimal"},
        "Set<String>": {"type": "Set", "element": {"type": "String"}},
        "Set<Long>": {"type": "Set", "element": {"type": "Long"}},
    }
    if name not in cedar:
        raise InvalidInput(
            f"{where}: unknown argument type {spec!r} (one of {', '.join(ARGUMENT_TYPES)}, "
            "with '?' for optional)",
            field=where,
        )
    return cedar[name], optional


def cedar_value(value: Any, cedar_type: Mapping[str, Any], where: str) -> Any:
    """A Python value as Cedar JSON for `cedar_type`; InvalidInput naming `where` otherwise."""
    kind = cedar_type["type"]
    ok: bool
    if kind == "String":
        ok = isinstance(value, str)
    elif kind == "Boolean":
        ok = isinstance(value, bool)
    elif kind == "Long":
        ok = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and _LONG_MIN <= value <= _LONG_MAX
        )
    elif kind == "Extension":
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            ok = False
        else:
            return {"__extn": {"fn": "decimal", "arg": _decimal_literal(value, where)}}
    elif kind == "Set":
        if not isinstance(value, list | tuple | set | frozenset):
            ok = False
        else:
            element = cedar_type["element"]
            return [cedar_value(v, element, f"{where}[{i}]") for i, v in enumerate(value)]
    else:  # pragma: no cover - the schema only holds the types above
        ok = False
    if not ok:
        expected = kind if kind != "Extension" else "decimal"
        raise InvalidInput(f"{where}: expected {expected}, got {value!r}", field=where)
    return value


def cedar_datetime(value: datetime) -> dict[str, Any]:
    if value.tzinfo is None:
        raise InvalidInput("now must be timezone-aware", field="now")
    text = (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )
    return {"__extn": {"fn": "datetime", "arg": text}}


# --- schema -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    descriptor: ToolDescriptor
    attrs: dict[str, Any]
    arguments: dict[str, tuple[dict[str, Any], bool]]


class PolicySchema:
    """The Cedar schema for a set of tools, parsed once, plus the tool entities it implies."""

    def __init__(self, tools: Sequence[ToolDescriptor], *, source: str = "tools") -> None:
        problems: list[SpecProblem] = []
        self.tools: dict[str, _Tool] = {}
        attr_types: dict[str, dict[str, Any]] = {}
        attr_owners: dict[str, int] = {}
        for tool in tools:
            try:
                self.tools[tool.name] = self._check_tool(tool, attr_types, attr_owners)
            except InvalidInput as exc:
                problems.append(SpecProblem(source, exc.field or tool.name, exc.message))
        if problems:
            raise SpecError(problems)
        tool_shape: dict[str, Any] = {
            "name": {"type": "String"},
            "kind": {"type": "String"},
            "tags": {"type": "Set", "element": {"type": "String"}},
        }
        for attr, cedar_type in sorted(attr_types.items()):
            tool_shape[attr] = {**cedar_type, "required": attr_owners[attr] == len(self.tools)}
        self.json: dict[str, Any] = {
            NAMESPACE: {
                "entityTypes": {
                    "User": {
                        "shape": {
                            "type": "Record",
                            "attributes": {
                                "tenant": {"type": "String"},
                                "user": {"type": "String"},
                                "tier": {"type": "String"},
                                "roles": {"type": "Set", "element": {"type": "String"}},
                            },
                        }
                    },
                    "Agent": {
                        "shape": {
                            "type": "Record",
                            "attributes": {
                                "name": {"type": "String"},
                                "user": {"type": "Entity", "name": "User"},
                            },
                        }
                    },
                    "Tool": {"shape": {"type": "Record", "attributes": tool_shape}},
                },
                "actions": {
                    name: {
                        "appliesTo": {
                            "principalTypes": ["Agent"],
                            "resourceTypes": ["Tool"],
                            "context": self._context_shape(tool),
                        }
                    }
                    for name, tool in sorted(self.tools.items())
                },
            }
        }
        self.handle = cedarpy.Schema.from_json_str(json.dumps(self.json))
        self.tool_entities: list[dict[str, Any]] = [
            {"uid": {"type": f"{NAMESPACE}::Tool", "id": name}, "attrs": tool.attrs, "parents": []}
            for name, tool in sorted(self.tools.items())
        ]

    @staticmethod
    def _check_tool(
        tool: ToolDescriptor, attr_types: dict[str, dict[str, Any]], attr_owners: dict[str, int]
    ) -> _Tool:
        if not tool.name or any(c in tool.name for c in '"\\\n'):
            raise InvalidInput(f"invalid tool name {tool.name!r}", field=tool.name)
        attrs: dict[str, Any] = {
            "name": tool.name,
            "kind": tool.kind,
            "tags": sorted(set(tool.tags)),
        }
        for attr, value in tool.attributes.items():
            where = f"{tool.name}.attributes.{attr}"
            if not _IDENT.fullmatch(attr) or attr in RESERVED_TOOL_ATTRIBUTES:
                raise InvalidInput(f"{where}: invalid or reserved attribute name", field=where)
            cedar_type = _type_of(value, where)
            known = attr_types.setdefault(attr, cedar_type)
            if known != cedar_type:
                empty_set = isinstance(value, list | tuple | set | frozenset) and not value
                if not (empty_set and known["type"] == "Set"):
                    raise InvalidInput(
                        f"{where}: type differs from another tool's {attr!r}", field=where
                    )
                cedar_type = known
            attr_owners[attr] = attr_owners.get(attr, 0) + 1
            attrs[attr] = cedar_value(value, cedar_type, where)
        arguments = {}
        for arg, spec in tool.arguments.items():
            where = f"{tool.name}.arguments.{arg}"
            if not _IDENT.fullmatch(arg):
                raise InvalidInput(f"{where}: argument names must be identifiers", field=where)
            arguments[arg] = _argument_type(spec, where)
        return _Tool(tool, attrs, arguments)

    @staticmethod
    def _context_shape(tool: _Tool) -> dict[str, Any]:
        args = {
            name: {**cedar_type, "required": not optional}
            for name, (cedar_type, optional) in sorted(tool.arguments.items())
        }
        return {
            "type": "Record",
            "attributes": {
                "now": {"type": "Extension", "name": "datetime"},
                "budget_remaining_pct": {"type": "Long"},
                "has_human_approval": {"type": "Boolean"},
                "throttled": {"type": "Boolean"},
                "lane": {"type": "String"},
                "args": {"type": "Record", "attributes": args},
            },
        }

    def cedar_text(self) -> str:
        """The schema in Cedar's human-readable syntax (for docs and `keel policy schema`)."""
        return str(self.handle)

    def args_context(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The call's declared arguments as Cedar JSON; undeclared arguments are dropped."""
        declared = self.tools[tool].arguments
        out: dict[str, Any] = {}
        for name, (cedar_type, optional) in declared.items():
            if name not in args or args[name] is None:
                if optional:
                    continue
                raise InvalidInput(
                    f"args.{name} is required by the policy schema", field=f"args.{name}"
                )
            out[name] = cedar_value(args[name], cedar_type, f"args.{name}")
        return out


__all__ = [
    "ARGUMENT_TYPES",
    "CONTEXT_FIELDS",
    "NAMESPACE",
    "PolicySchema",
    "ToolDescriptor",
    "cedar_datetime",
    "cedar_value",
    "load_tool_descriptors",
]
