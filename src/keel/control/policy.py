"""Cedar authorization for tool calls: ALLOW, DENY or REQUIRE_APPROVAL, with the policies that
decided it.

Load once, decide many times: `PolicyEngine.load()` reads `*.cedar` files, validates every
policy against the schema generated from the tool descriptors (`keel.control.cedar_schema`),
and pre-parses the set; any problem raises `SpecError` with `file:line: reason` entries, so a
malformed or misspelt policy never loads (and never silently changes a decision).

Deciding: `decide()` evaluates the request twice in one batch, with `has_human_approval` false
and true. Denied-without but allowed-with approval is REQUIRE_APPROVAL; the canonical policy is
`forbid (…) when { … } unless { context.has_human_approval };`. No permitting policy means DENY
(Cedar's default). Any evaluation error (for example a policy reading an attribute a request
lacks) also means DENY, with the errors attached: the engine fails closed.

Policy names: a policy's `@id("…")` annotation, else `file:line`. Names must be unique.

Agent folders: policies found in `<agent folder>/policies/*.cedar` apply only to that agent —
the loader pins their principal to `Keel::Agent::"<agent>"`; naming any other principal there is
an error.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import cedarpy
from cedarpy import pst

from keel.control.cedar_schema import NAMESPACE, PolicySchema, ToolDescriptor, cedar_datetime
from keel.control.cedar_source import Statement, located, parse_problem, split_statements
from keel.errors import InvalidInput, SpecError, SpecProblem

_AGENT = pst.EntityType("Agent", (NAMESPACE,))
_TOOL = pst.EntityType("Tool", (NAMESPACE,))


class Decision(StrEnum):
    ALLOW = "ALLOW"
    DENY = "DENY"
    REQUIRE_APPROVAL = "REQUIRE_APPROVAL"


@dataclass(frozen=True)
class PolicyPrincipal:
    """Who is calling: the agent, and the user it acts for (tenant, user id, roles, tier)."""

    agent: str
    tenant: str
    user: str
    roles: frozenset[str] = frozenset()
    tier: str = "standard"

    def __post_init__(self) -> None:
        for name in ("agent", "tenant", "user"):
            if not getattr(self, name):
                raise InvalidInput(f"principal {name} is required", field=name)
        object.__setattr__(self, "roles", frozenset(self.roles))


@dataclass(frozen=True)
class AuthorizationRequest:
    """One tool call to authorize. `now` defaults to the current time; `args` are the call's
    validated arguments (only those the tool descriptor declares reach the policies)."""

    principal: PolicyPrincipal
    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)
    now: datetime | None = None
    budget_remaining_pct: int = 100
    has_human_approval: bool = False
    throttled: bool = False
    lane: str = "interactive"


@dataclass(frozen=True)
class PolicyDecision:
    """The outcome and why: `policies` are the names that decided it (the permits for ALLOW,
    the forbids for DENY, the approval-gated policies for REQUIRE_APPROVAL; empty for the
    default deny), `errors` any evaluation errors (which force DENY)."""

    decision: Decision
    policies: tuple[str, ...]
    reason: str
    errors: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW

    @property
    def requires_approval(self) -> bool:
        return self.decision is Decision.REQUIRE_APPROVAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "policies": list(self.policies),
            "reason": self.reason,
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class LoadedPolicy:
    """Where a loaded policy came from; `agent` is set for agent-folder policies."""

    name: str
    effect: str
    file: str
    line: int
    agent: str | None = None


@dataclass(frozen=True)
class PolicySource:
    """Cedar text to load; `agent` scopes every policy in it to that agent."""

    file: str
    text: str
    agent: str | None = None


def collect_sources(
    paths: Sequence[Path], *, agent_dirs: Mapping[str, Path] | None = None
) -> list[PolicySource]:
    """`*.cedar` files under `paths` (files or folders, recursively, sorted), plus each agent
    folder's `policies/*.cedar` scoped to that agent."""
    sources: list[PolicySource] = []

    def read(path: Path, agent: str | None) -> None:
        try:
            sources.append(PolicySource(str(path), path.read_text(encoding="utf-8"), agent))
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError([SpecProblem(str(path), "", f"cannot read: {exc}")]) from exc

    for path in paths:
        if path.is_dir():
            for file in sorted(path.rglob("*.cedar")):
                read(file, None)
        elif path.is_file():
            read(path, None)
        else:
            raise SpecError([SpecProblem(str(path), "", "no such file or folder")])
    for agent, folder in sorted((agent_dirs or {}).items()):
        for file in sorted((folder / "policies").glob("*.cedar")):
            read(file, agent)
    return sources


def _scope_to_agent(template: pst.Template, agent: str, stmt: Statement) -> pst.Template:
    uid = pst.EntityUid(_AGENT, agent)
    principal = template.principal
    if isinstance(principal, pst.ScopeAny) or (
        isinstance(principal, pst.ScopeIs) and principal.entity_type == _AGENT
    ):
        return dataclasses.replace(template, principal=pst.ScopeEq(uid))
    if isinstance(principal, pst.ScopeEq) and principal.entity == uid:
        return template
    raise SpecError(
        [
            SpecProblem(
                stmt.file,
                str(stmt.line),
                f"a policy in agent {agent!r}'s folder may only apply to "
                f'Keel::Agent::"{agent}" (leave principal unconstrained)',
            )
        ]
    )


class PolicyEngine:
    """Pre-parsed Cedar policies plus the schema and tool entities; thread-safe to share."""

    def __init__(
        self, schema: PolicySchema, policies: Sequence[tuple[LoadedPolicy, pst.Template]]
    ) -> None:
        self.schema = schema
        self.policies: tuple[LoadedPolicy, ...] = tuple(p for p, _ in policies)
        templates = {
            info.name: dataclasses.replace(template, id=info.name) for info, template in policies
        }
        self._policy_set = cedarpy.PolicySet.from_pst(
            pst.PolicySet(
                templates=pst.FrozenMap(),
                static_policies=pst.FrozenMap(templates),
                template_links=(),
            )
        )
        self._tool_entities = cedarpy.Entities.from_json_str(
            json.dumps(schema.tool_entities), schema.handle
        )
        self._entities = lru_cache(maxsize=4096)(self._principal_entities)

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        paths: Sequence[Path],
        tools: Sequence[ToolDescriptor] | PolicySchema,
        *,
        agent_dirs: Mapping[str, Path] | None = None,
    ) -> PolicyEngine:
        """Read, validate and pre-parse every policy; SpecError lists all problems found."""
        return cls.from_sources(collect_sources(paths, agent_dirs=agent_dirs), tools)

    @classmethod
    def from_sources(
        cls, sources: Sequence[PolicySource], tools: Sequence[ToolDescriptor] | PolicySchema
    ) -> PolicyEngine:
        schema = tools if isinstance(tools, PolicySchema) else PolicySchema(tools)
        problems: list[SpecProblem] = []
        loaded: list[tuple[LoadedPolicy, pst.Template]] = []
        seen: dict[str, LoadedPolicy] = {}
        for source in sources:
            for stmt in split_statements(source.text, source.file):
                try:
                    info, template = cls._load_statement(stmt, source.agent, schema)
                except SpecError as exc:
                    problems.extend(exc.problems)
                    continue
                if info.name in seen:
                    first = seen[info.name]
                    problems.append(
                        SpecProblem(
                            stmt.file,
                            str(stmt.line),
                            f"duplicate policy id {info.name!r} (first at {first.file}:{first.line})",
                        )
                    )
                    continue
                seen[info.name] = info
                loaded.append((info, template))
        if problems:
            raise SpecError(problems)
        return cls(schema, loaded)

    @staticmethod
    def _load_statement(
        stmt: Statement, agent: str | None, schema: PolicySchema
    ) -> tuple[LoadedPolicy, pst.Template]:
        problem = parse_problem(stmt)
        if problem is not None:
            raise SpecError([problem])
        parsed = cedarpy.PolicySet.from_str(stmt.text).to_pst()
        if parsed.templates:
            raise SpecError(
                [
                    SpecProblem(
                        stmt.file,
                        str(stmt.line),
                        "policy templates (?principal, ?resource) are not supported",
                    )
                ]
            )
        [template] = parsed.static_policies.values()
        result = cedarpy.validate_policies(stmt.text, schema.handle)
        problems = [located(stmt, err.error) for err in result.errors]
        for uid in pst.entity_uids(template):
            if uid.type == _TOOL and uid.id not in schema.tools:
                problems.append(located(stmt, f"unknown tool `{uid}`"))
        if problems:
            raise SpecError(problems)
        if agent is not None:
            template = _scope_to_agent(template, agent, stmt)
        name = template.annotations.get("id") or f"{stmt.file}:{stmt.line}"
        return LoadedPolicy(name, template.effect, stmt.file, stmt.line, agent), template

    # --- deciding ------------------------------------------------------------------------

    def _principal_entities(
        self, agent: str, tenant: str, user: str, tier: str, roles: frozenset[str]
    ) -> cedarpy.Entities:
        user_uid = {"type": f"{NAMESPACE}::User", "id": f"{tenant}/{user}"}
        delta = [
            {
                "uid": user_uid,
                "attrs": {"tenant": tenant, "user": user, "tier": tier, "roles": sorted(roles)},
                "parents": [],
            },
            {
                "uid": {"type": f"{NAMESPACE}::Agent", "id": agent},
                "attrs": {"name": agent, "user": {"__entity": user_uid}},
                "parents": [],
            },
        ]
        return self._tool_entities.with_added_json_str(json.dumps(delta))

    def _context(self, request: AuthorizationRequest) -> dict[str, Any]:
        if request.tool not in self.schema.tools:
            raise InvalidInput(f"unknown tool {request.tool!r}", field="tool")
        pct = request.budget_remaining_pct
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise InvalidInput(
                "budget_remaining_pct must be an integer 0-100", field="budget_remaining_pct"
            )
        return {
            "now": cedar_datetime(request.now or datetime.now(UTC)),
            "budget_remaining_pct": pct,
            "has_human_approval": bool(request.has_human_approval),
            "throttled": bool(request.throttled),
            "lane": request.lane,
            "args": self.schema.args_context(request.tool, request.args),
        }

    def decide(self, request: AuthorizationRequest) -> PolicyDecision:
        """Authorize one tool call. Raises InvalidInput for an unknown tool or ill-typed
        arguments/context (the caller's bug, not a policy outcome)."""
        p = request.principal
        entities = self._entities(p.agent, p.tenant, p.user, p.tier, p.roles)
        context = self._context(request)
        base = {
            "principal": {"type": f"{NAMESPACE}::Agent", "id": p.agent},
            "action": {"type": f"{NAMESPACE}::Action", "id": request.tool},
            "resource": {"type": f"{NAMESPACE}::Tool", "id": request.tool},
        }
        if context["has_human_approval"]:
            [only] = cedarpy.is_authorized_batch(
                [{**base, "context": context}], self._policy_set, entities, self.schema.handle
            )
            return self._outcome(only, None)
        without, with_approval = cedarpy.is_authorized_batch(
            [
                {**base, "context": context},
                {**base, "context": {**context, "has_human_approval": True}},
            ],
            self._policy_set,
            entities,
            self.schema.handle,
        )
        return self._outcome(without, with_approval)

    @staticmethod
    def _outcome(
        first: cedarpy.AuthzResult, approved: cedarpy.AuthzResult | None
    ) -> PolicyDecision:
        errors = tuple(first.diagnostics.errors) + (
            tuple(approved.diagnostics.errors) if approved is not None else ()
        )
        reasons = tuple(sorted(first.diagnostics.reasons))
        if errors or first.decision is cedarpy.Decision.NoDecision:
            return PolicyDecision(
                Decision.DENY,
                reasons,
                "denied: policy evaluation failed (" + "; ".join(errors or ("no decision",)) + ")",
                errors or ("no decision",),
            )
        if first.decision is cedarpy.Decision.Allow:
            return PolicyDecision(Decision.ALLOW, reasons, "permitted by " + ", ".join(reasons))
        if approved is not None and approved.decision is cedarpy.Decision.Allow:
            gated = reasons or tuple(sorted(approved.diagnostics.reasons))
            return PolicyDecision(
                Decision.REQUIRE_APPROVAL, gated, "needs human approval: " + ", ".join(gated)
            )
        if reasons:
            return PolicyDecision(Decision.DENY, reasons, "forbidden by " + ", ".join(reasons))
        return PolicyDecision(Decision.DENY, (), "no policy permits this call")


__all__ = [
    "AuthorizationRequest",
    "Decision",
    "LoadedPolicy",
    "PolicyDecision",
    "PolicyEngine",
    "PolicyPrincipal",
    "PolicySource",
    "collect_sources",
]
