"""`ControlPlane`: the control plane of one process, assembled from settings and the deployed
agents, and plugged into the fabric (`install`).

It owns the pieces the gate composes — the tool registry, the Cedar policies (deployment and
per agent), budgets, the rate limiter, the credential broker and its redactor, guardrails per
agent, the audit ledger — and the few lookups every check needs (the run's principal and
lane, the tenant's tier). Its capabilities for an agent are, outer first: the tool gate, the
budget guard (model requests), the input guard and the output guard.

Policies: every `*.cedar` under `KEEL_POLICY_DIRS` and each agents folder's `policies/`
(deployment-wide), plus each agent folder's `policies/*.cedar` and the files its `policies:`
list names (scoped to that agent). With no deployment-wide policy at all, a baseline permits
every registered tool (agents' own policies still forbid) — in development only: production
refuses to start without deployment policies.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic_ai.capabilities import AbstractCapability
from sqlalchemy import select
from sqlalchemy.orm import Session

from keel.agents.deps import RunDeps
from keel.agents.loader import LoadedAgent, agent_dirs
from keel.control.budgets import AgentBudget, Budgets
from keel.control.credentials import CredentialBroker, install_log_redaction
from keel.control.guardrails import GuardrailRegistry, GuardrailSet
from keel.control.ledger import AuditKind, Ledger
from keel.control.policy import PolicyEngine, PolicyPrincipal, PolicySource, collect_sources
from keel.control.ratelimit import MemoryRateLimiter, RateLimiter, RateLimitPolicy, RedisRateLimiter
from keel.control.redactor import SecretRedactor
from keel.control.registry import ToolRegistry, ToolSpec, load_deployment_tools
from keel.control.vault import Vault
from keel.errors import NotFound, SpecError, SpecProblem
from keel.settings import RateLimitSetting
from keel.store.database import Database
from keel.store.tables import Run, RunEvent, Tenant, UsageRecord
from keel.store.types import utcnow

if TYPE_CHECKING:
    from keel.fabric.activities import Activities
    from keel.fabric.approvals import ApprovalView
    from keel.fabric.catalog import AgentCatalog
    from keel.fabric.extensions import FabricExtensions
    from keel.fabric.service import Fabric
    from keel.settings import Settings


BASELINE_FILE = "<keel baseline>"
BASELINE_POLICY = (
    '@id("keel.baseline.permit-registered-tools")\npermit (principal, action, resource);\n'
)
DEFAULT_GUARDRAILS: dict[str, Any] = {
    "input": {"prompt_injection": "warn"},
    "tool_output": {"prompt_injection": "warn"},
}
TIER_TTL_SECONDS = 30.0
PRINCIPAL_CACHE = 4096


def step_key(index: str) -> str | None:
    """A key unique to this point of this durable step execution (None outside workflows):
    a step that re-executes after a crash writes its control events once."""
    from dbos import DBOS

    workflow_id = DBOS.workflow_id
    if workflow_id is None:
        return None
    return f"{workflow_id}:{DBOS.step_id}:control.{index}"


@dataclass(frozen=True)
class RunPrincipal:
    """Who a run acts for, as policies see it, and its lane (cached per run)."""

    policy: PolicyPrincipal
    lane: str


@dataclass(frozen=True)
class Audit:
    """A ledger entry to append with a recording (once, however often the step re-runs)."""

    kind: str
    actor: str
    subject: str
    data: dict[str, Any]


def deployment_policy_sources(settings: Settings) -> list[PolicySource]:
    """The deployment-wide Cedar files: `KEEL_POLICY_DIRS` and each agents folder's `policies/`."""
    paths = [*settings.policy_dirs]
    paths += [d / "policies" for d in agent_dirs(settings) if (d / "policies").is_dir()]
    return collect_sources(paths)


def agent_policy_sources(agents: Sequence[LoadedAgent]) -> list[PolicySource]:
    """Each agent folder's `policies/*.cedar` plus the files its `policies:` list names."""
    sources = collect_sources([], agent_dirs={a.name: a.folder for a in agents})
    problems: list[SpecProblem] = []
    for loaded in agents:
        for i, rel in enumerate(loaded.spec.policies):
            path = (loaded.folder / rel).resolve()
            if loaded.folder not in path.parents or not path.is_file():
                problems.append(
                    SpecProblem(
                        f"{loaded.folder.name}/agent.yaml",
                        f"policies.{i}",
                        f"no Cedar file {rel!r} inside the agent folder",
                    )
                )
                continue
            sources.append(PolicySource(str(path), path.read_text(encoding="utf-8"), loaded.name))
    if problems:
        raise SpecError(problems)
    return sources


def load_policies(
    settings: Settings, registry: ToolRegistry, agents: Sequence[LoadedAgent]
) -> tuple[PolicyEngine, list[PolicySource]]:
    """Validate and load every policy (SpecError with `file:line: reason` for each problem)."""
    deployment = deployment_policy_sources(settings)
    if not any(source.text.strip() for source in deployment):
        if settings.env == "production":
            raise SpecError(
                [
                    SpecProblem(
                        "KEEL_POLICY_DIRS",
                        "-",
                        "production needs deployment-wide Cedar "
                        "policies (no baseline permit outside development)",
                    )
                ]
            )
        deployment = [PolicySource(BASELINE_FILE, BASELINE_POLICY)]
    sources = [*deployment, *agent_policy_sources(agents)]
    return PolicyEngine.from_sources(sources, registry.descriptors()), sources


def guardrails_for(loaded: LoadedAgent, registry: GuardrailRegistry) -> GuardrailSet:
    """The agent's guardrails: its `guardrails:` stages, and the defaults (flag prompt
    injection in the input and in tool output) for stages it does not configure."""
    config = {**DEFAULT_GUARDRAILS, **(loaded.spec.guardrails or {})}
    return GuardrailSet.from_config(config, registry, source=f"{loaded.folder.name}/agent.yaml")


class ControlPlane:
    """Built once per process (`ControlPlane.build`); shared by every run's capabilities."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: ToolRegistry,
        policies: PolicyEngine,
        *,
        agents: Mapping[str, LoadedAgent],
        budgets: Budgets,
        ledger: Ledger,
        redactor: SecretRedactor,
        broker: CredentialBroker,
        limiter: RateLimiter,
        guardrails: Mapping[str, GuardrailSet],
    ) -> None:
        self.settings = settings
        self.db = db
        self.registry = registry
        self.policies = policies
        self.agents = dict(agents)
        self.budgets = budgets
        self.ledger = ledger
        self.redactor = redactor
        self.broker = broker
        self.limiter = limiter
        self.guardrails = dict(guardrails)
        self.activities: Activities | None = None
        # what "now" is for policies (`context.now`) and tool availability windows; tests pin it
        self.clock: Callable[[], datetime] = utcnow
        self._lock = threading.Lock()
        self._principals: OrderedDict[str, RunPrincipal] = OrderedDict()
        self._tiers: dict[str, tuple[float, str]] = {}

    # --- assembly -----------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        settings: Settings,
        db: Database,
        catalog: AgentCatalog,
        *,
        deployment_tools: Mapping[str, ToolSpec] | None = None,
        http_transport: Any = None,
        rate_limiter: RateLimiter | None = None,
        vault: Vault | None = None,
        guardrail_registry: GuardrailRegistry | None = None,
    ) -> ControlPlane:
        """Check and assemble everything; SpecError lists every problem (bad tools.yaml,
        policies, budgets or guardrails), so nothing half-configured ever runs."""
        tools = (
            deployment_tools
            if deployment_tools is not None
            else load_deployment_tools(agent_dirs(settings))
        )
        agents = list(catalog)
        registry = ToolRegistry.build(tools, agents)
        engine, sources = load_policies(settings, registry, agents)
        problems: list[SpecProblem] = []
        budgets: dict[str, AgentBudget] = {}
        guardrails: dict[str, GuardrailSet] = {}
        gr_registry = guardrail_registry or GuardrailRegistry.default()
        for loaded in agents:
            where = f"{loaded.folder.name}/agent.yaml"
            try:
                budgets[loaded.name] = AgentBudget.parse(loaded.spec.budget or {}, source=where)
            except SpecError as exc:
                problems += exc.problems
            try:
                guardrails[loaded.name] = guardrails_for(loaded, gr_registry)
            except SpecError as exc:
                problems += exc.problems
        if problems:
            raise SpecError(problems)
        ledger = Ledger(db)
        redactor = SecretRedactor()
        install_log_redaction(redactor)
        holder: list[Vault] = [vault] if vault is not None else []

        def the_vault() -> Vault:
            if not holder:
                from keel.control.keys import local_key_provider

                holder.append(
                    Vault(db, local_key_provider(settings), ledger=ledger, redactor=redactor)
                )
            return holder[0]

        if vault is not None and vault.redactor is None:
            vault.redactor = redactor
        broker = CredentialBroker(the_vault, redactor, transport=http_transport)
        plane = cls(
            settings, db, registry, engine, agents={a.name: a for a in agents},
            budgets=Budgets(db, settings, budgets, ledger=ledger), ledger=ledger,
            redactor=redactor, broker=broker,
            limiter=rate_limiter or tool_rate_limiter(settings, registry), guardrails=guardrails,
        )  # fmt: skip
        plane.record_policy_load(sources)
        return plane

    def install(self, extensions: FabricExtensions) -> None:
        """Plug the control plane into a fabric's extensions."""
        from keel.control.guards import OutputGuardrailCheck

        extensions.capabilities.append(self.capabilities)
        if any(g.stages.get("output") for g in self.guardrails.values()):
            extensions.output_checks.append(OutputGuardrailCheck(self))
        extensions.on_fabric.append(self.bind)
        extensions.on_approval.append(self.approval_decided)

    def bind(self, fabric: Fabric) -> None:
        """Write run events through the fabric's activities, inside the fabric's steps."""
        self.activities = fabric.activities

    def capabilities(self, loaded: LoadedAgent) -> list[AbstractCapability[RunDeps]]:
        from keel.control.gate import ToolGate
        from keel.control.guards import BudgetGuard, InputGuard, OutputGuard

        return [ToolGate(self, loaded), BudgetGuard(self, loaded), InputGuard(self, loaded),
                OutputGuard(self, loaded)]  # fmt: skip

    # --- lookups --------------------------------------------------------------------------

    def tenant_tier(self, tenant_id: str) -> str:
        """The tenant's tier (cached for 30 s; "standard" for an unknown tenant)."""
        now = time.monotonic()
        cached = self._tiers.get(tenant_id)
        if cached is not None and now - cached[0] < TIER_TTL_SECONDS:
            return cached[1]
        with self.db.transaction() as s:
            tenant = s.get(Tenant, tenant_id)
            tier = tenant.tier if tenant is not None else "standard"
        self._tiers[tenant_id] = (now, tier)
        return tier

    def run_principal(self, run_id: str, tenant_id: str, user_id: str, agent: str) -> RunPrincipal:
        """The run's principal (roles from the run envelope, tier from the tenant row)."""
        with self._lock:
            cached = self._principals.get(run_id)
            if cached is not None:
                self._principals.move_to_end(run_id)
                return cached
        roles: frozenset[str] = frozenset()
        lane = "interactive"
        with self.db.transaction() as s:
            row = s.execute(select(Run.principal, Run.lane).where(Run.id == run_id)).first()
        if row is not None:
            roles = frozenset(str(r) for r in (row.principal or {}).get("roles") or ())
            lane = row.lane
        principal = RunPrincipal(
            PolicyPrincipal(agent, tenant_id, user_id, roles, self.tenant_tier(tenant_id)), lane
        )
        with self._lock:
            self._principals[run_id] = principal
            while len(self._principals) > PRINCIPAL_CACHE:
                self._principals.popitem(last=False)
        return principal

    # --- recording ------------------------------------------------------------------------

    def record(
        self,
        run_id: str,
        tenant_id: str,
        *,
        event: tuple[str, dict[str, Any]] | None = None,
        index: str = "0",
        audit: Audit | None = None,
        usage: tuple[str, str, Decimal] | None = None,
    ) -> None:
        """Write a run event, its audit entry and a tool's usage row in one transaction —
        once per durable step, however often the step re-executes (keyed like the fabric's
        own events). Without a fabric (or run) only the audit entry is written."""
        key = step_key(index)
        if self.activities is None:
            if audit is not None:
                self._append(audit, tenant_id, None)
            return
        try:
            with self.activities.store.write(run_id) as tx:
                first = (
                    key is None
                    or tx.session.scalar(
                        select(RunEvent.seq).where(RunEvent.run_id == run_id, RunEvent.key == key)
                    )
                    is None
                )
                if usage is not None:
                    self._add_usage(tx.session, tx.run, *usage)
                if event is not None:
                    tx.event(event[0], self.redactor.scrub_value(event[1]), key=key)
                if audit is not None and first:
                    self._append(audit, tenant_id, tx.session)
        except NotFound:
            if audit is not None:
                self._append(audit, tenant_id, None)

    def _append(self, audit: Audit, tenant_id: str, session: Session | None) -> None:
        self.ledger.append(
            actor=audit.actor, kind=audit.kind, subject=audit.subject,
            data=self.redactor.scrub_value(audit.data), tenant_id=tenant_id, session=session,
        )  # fmt: skip

    @staticmethod
    def _add_usage(session: Session, run: Run, key: str, tool: str, cost: Decimal) -> None:
        exists = session.scalar(
            select(UsageRecord.id).where(UsageRecord.run_id == run.id, UsageRecord.key == key)
        )
        if exists is not None:
            return
        session.add(
            UsageRecord(
                run_id=run.id, key=key, tenant_id=run.tenant_id, user_id=run.user_id,
                agent=run.agent, prompt_name=run.prompt_name, prompt_version=run.prompt_version,
                model=f"tool:{tool}", kind="tool", input_tokens=0, output_tokens=0, requests=1,
                cost_usd=float(cost), created_at=utcnow(),
            )
        )  # fmt: skip
        run.cost_usd = float(run.cost_usd or 0) + float(cost)

    # --- audit of what happens elsewhere --------------------------------------------------

    def approval_decided(self, session: Session, approval: ApprovalView) -> None:
        """An approval was decided (fabric hook): the ledger entry commits with it."""
        self.ledger.append(
            actor=approval.decided_by or "system",
            kind=AuditKind.APPROVAL,
            subject=f"tool:{approval.tool}",
            data={"approval_id": approval.id, "run_id": approval.run_id,
                  "tool_call_id": approval.tool_call_id, "decision": approval.status,
                  "note": approval.note, "reason": approval.reason,
                  "requested_by": approval.requested_by},
            tenant_id=approval.tenant_id,
            session=session,
        )  # fmt: skip

    def record_policy_load(self, sources: Sequence[PolicySource]) -> None:
        """A global ledger entry when the loaded policy set differs from the last one recorded."""
        files = sorted(
            (source.file, hashlib.sha256(source.text.encode()).hexdigest(), source.agent or "")
            for source in sources
        )
        digest = hashlib.sha256(json.dumps(files).encode()).hexdigest()
        last = self.ledger.entries(kind=AuditKind.POLICY, global_only=True, limit=1)
        if last and last[0].data.get("digest") == digest:
            return
        self.ledger.append(
            actor="deploy", kind=AuditKind.POLICY, subject="policies",
            data={"action": "load", "digest": digest, "policies": len(self.policies.policies),
                  "tools": len(self.registry),
                  "files": [{"file": f, "sha256": h, "agent": a or None} for f, h, a in files]},
        )  # fmt: skip


def tool_rate_limiter(settings: Settings, registry: ToolRegistry) -> RateLimiter:
    """Buckets per tenant and tool (`tool:<name>`) for the tools that declare a rate limit:
    in Redis when `KEEL_REDIS_URL` is set (shared by every worker), in memory otherwise."""
    limits: dict[str, RateLimitSetting] = {}
    for spec in registry:
        if spec.options.rate_limit is not None:
            limits[f"tool:{spec.name}"] = spec.options.rate_limit
    policy = RateLimitPolicy(limits)
    if settings.redis_url:
        return RedisRateLimiter.from_url(settings.redis_url, policy, prefix="keel:rl:tool:")
    return MemoryRateLimiter(policy)


def install_control_plane(
    extensions: FabricExtensions, settings: Settings, db: Database, catalog: AgentCatalog
) -> ControlPlane:
    """The composition root's one line: build the control plane and plug it in."""
    plane = ControlPlane.build(settings, db, catalog)
    plane.install(extensions)
    return plane


__all__ = [
    "BASELINE_POLICY",
    "Audit",
    "ControlPlane",
    "RunPrincipal",
    "agent_policy_sources",
    "deployment_policy_sources",
    "guardrails_for",
    "install_control_plane",
    "load_policies",
    "tool_rate_limiter",
]
