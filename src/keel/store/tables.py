"""Every table Keel owns, in one file so the whole schema reads at a glance.

Sections follow the planes (foundation, fabric, control, evals, api, memory). Every
schema change here needs an Alembic migration in `migrations/versions/`, tested on
SQLite and PostgreSQL. Ids are prefixed ULIDs (`keel.ids.new_id`); timestamps are
timezone-aware UTC; tenant-owned rows carry `tenant_id` and every query filters on it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from keel.store.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {  # noqa: RUF012
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
        datetime: UTCDateTime,
    }


# --- foundation (issue 2) -------------------------------------------------------------


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key, stored as a sha256 hash; the secret is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(32))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class AgentVersion(Base):
    """A deployed agent spec version: the content hash of its folder."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column()
    source_dir: Mapped[str] = mapped_column(Text, default="")
    deployed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prompt(Base):
    __tablename__ = "prompts"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptVersion(Base):
    """An immutable prompt version: a template with `{{variables}}` plus model/settings metadata."""

    __tablename__ = "prompt_versions"
    __table_args__ = (
        UniqueConstraint("prompt_name", "version"),
        UniqueConstraint("prompt_name", "content_hash", name="uq_prompt_versions_content"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prompt_name: Mapped[str] = mapped_column(ForeignKey("prompts.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptAlias(Base):
    """A movable name (`production`, `staging`, …) pointing at one version."""

    __tablename__ = "prompt_aliases"

    prompt_name: Mapped[str] = mapped_column(ForeignKey("prompts.name"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptAliasEvent(Base):
    """Alias history: every move, who made it and why (rollback reads this)."""

    __tablename__ = "prompt_alias_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    prompt_name: Mapped[str] = mapped_column(String(100), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    from_version: Mapped[int | None] = mapped_column(Integer, default=None)
    to_version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_owner", "tenant_id", "user_id", "updated_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    agent: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(200), default=None)
    preview: Mapped[str | None] = mapped_column(Text, default=None)
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    history: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (UniqueConstraint("conversation_id", "index"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    index: Mapped[int] = mapped_column(Integer)
    input: Mapped[dict[str, Any]] = mapped_column()
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    status: Mapped[str] = mapped_column(String(32), default="queued")
    run_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)


class Feedback(Base):
    """Thumbs up/down plus text; one per user per turn, updatable."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("turn_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    turn_id: Mapped[str] = mapped_column(ForeignKey("turns.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    rating: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """The work item envelope: one agent execution (turn, one-shot call, batch item, eval case)."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_runs_idempotency"),
        Index("ix_runs_tenant_created", "tenant_id", "created_at"),
        Index("ix_runs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    principal: Mapped[dict[str, Any]] = mapped_column(default=dict)
    agent: Mapped[str] = mapped_column(String(100))
    spec_version: Mapped[str] = mapped_column(String(64))
    prompt_name: Mapped[str | None] = mapped_column(String(100), default=None)
    prompt_version: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str] = mapped_column(String(200))
    input: Mapped[dict[str, Any]] = mapped_column()
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    status: Mapped[str] = mapped_column(String(32), default="queued")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=5)
    lane: Mapped[str] = mapped_column(String(32), default="interactive")
    deadline: Mapped[datetime | None] = mapped_column(default=None)
    parent_run_id: Mapped[str | None] = mapped_column(String(64), default=None)
    conversation_id: Mapped[str | None] = mapped_column(String(64), default=None)
    turn_id: Mapped[str | None] = mapped_column(String(64), default=None)
    trace_context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    usage: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cost_usd: Mapped[float] = mapped_column(Numeric(14, 6, asdecimal=False), default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    # fabric (issue 3): the run as a chain of durable workflow segments
    segment: Mapped[int] = mapped_column(Integer, default=0)
    workflow_id: Mapped[str | None] = mapped_column(String(128), default=None)
    # large and needed only when a segment starts: not loaded with the row
    messages: Mapped[list[Any] | None] = mapped_column(JSONType, default=None, deferred=True)
    redrives: Mapped[int] = mapped_column(Integer, default=0)
    after_run_id: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    instructions: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    user_prompt: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    partial_text: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    event_seq: Mapped[int] = mapped_column(Integer, default=0)


class RunEvent(Base):
    """An ordered, persisted event of a run; `seq` is dense per run and is the SSE event id."""

    __tablename__ = "run_events"
    __table_args__ = (
        UniqueConstraint("run_id", "seq"),
        UniqueConstraint("run_id", "key", name="uq_run_events_key"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    key: Mapped[str | None] = mapped_column(String(200), default=None)


# --- fabric (issue 3) -----------------------------------------------------------------


class Approval(Base):
    """A tool call waiting for a human: the run's segment ends until every approval of it is
    resolved (approved, rejected, or expired, which counts as rejected)."""

    __tablename__ = "approvals"
    __table_args__ = (
        UniqueConstraint("run_id", "tool_call_id", name="uq_approvals_call"),
        Index("ix_approvals_tenant_status", "tenant_id", "status"),
        Index("ix_approvals_status_expires", "status", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    segment: Mapped[int] = mapped_column(Integer)
    tool_call_id: Mapped[str] = mapped_column(String(200))
    tool: Mapped[str] = mapped_column(String(200))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column(default=None)


class UsageRecord(Base):
    """One model request's usage and cost, attributed to tenant, agent, prompt version and model."""

    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_tenant_created", "tenant_id", "created_at"),
        UniqueConstraint("run_id", "key", name="uq_usage_records_key"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(200))
    agent: Mapped[str] = mapped_column(String(100))
    prompt_name: Mapped[str | None] = mapped_column(String(100), default=None)
    prompt_version: Mapped[int | None] = mapped_column(Integer, default=None)
    model: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), default="model")
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    requests: Mapped[int] = mapped_column(Integer, default=1)
    cost_usd: Mapped[float] = mapped_column(Numeric(14, 6, asdecimal=False), default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- control (issue 5) ----------------------------------------------------------------


class AuditEntry(Base):
    """One append-only, hash-chained audit ledger entry (`keel.control.ledger`).

    Chains are per tenant: `chain` is the tenant id, or "" for global entries. `seq` is dense
    per chain from 1; `hash` = sha256(prev_hash + canonical JSON of the entry's own fields).
    `data` is stored as the canonical JSON text that was hashed, so the bytes verified are the
    bytes written on SQLite and PostgreSQL alike. No foreign key to tenants: the ledger must
    outlive (and never cascade with) the rows it describes.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        Index("ix_audit_entries_tenant_kind", "tenant_id", "kind", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chain: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    tenant_id: Mapped[str | None] = mapped_column(String(64), default=None)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(500), default="")
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The newest entry of each audit chain; locked by every append, so chains never fork."""

    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class VaultDataKey(Base):
    """A tenant's data key, wrapped by the key provider (master key or KMS); never stored bare."""

    __tablename__ = "vault_data_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    provider: Mapped[str] = mapped_column(String(64))
    master_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VaultSecret(Base):
    """One version of a named tenant secret, AES-256-GCM encrypted under the tenant's data key.

    Deleting wipes `ciphertext`/`nonce` (crypto-shredding) and keeps the row as a tombstone.
    """

    __tablename__ = "vault_secrets"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version"),
        Index("ix_vault_secrets_tenant_name", "tenant_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    data_key_version: Mapped[int] = mapped_column(Integer)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by: Mapped[str | None] = mapped_column(String(200), default=None)


class Budget(Base):
    """A monthly budget: a tenant's (`agent` "") or one agent's within a tenant. Either
    limit may be empty; spend is read from `usage_records` (`keel.control.budgets`)."""

    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("tenant_id", "agent"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(100), default="")
    monthly_tokens: Mapped[int | None] = mapped_column(BigInteger, default=None)
    monthly_usd: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), default=None)
    updated_by: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- evals (issue 6) ------------------------------------------------------------------


class EvalReport(Base):
    """A gate report: candidate vs baseline prompt version on one dataset version.

    `report` holds the whole `keel.evals.report.GateReport` as JSON; the columns are what a
    promotion looks it up by (`latest PASS for prompt, candidate, baseline, dataset`).
    """

    __tablename__ = "eval_reports"
    __table_args__ = (
        Index(
            "ix_eval_reports_lookup",
            "prompt_name",
            "candidate_version",
            "baseline_version",
            "dataset_version",
            "created_at",
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), index=True)
    prompt_name: Mapped[str] = mapped_column(String(100))
    candidate_version: Mapped[int] = mapped_column(Integer)
    baseline_version: Mapped[int] = mapped_column(Integer)
    dataset_version: Mapped[str] = mapped_column(String(64))
    config_hash: Mapped[str] = mapped_column(String(64))
    verdict: Mapped[str] = mapped_column(String(8))
    report: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptPromotion(Base):
    """Every move of an alias the promotion gate made or allowed: promote (with the PASS
    report it rests on), forced promote, rollback, a canary's automatic rollback.

    `alias_event_id` is the `prompt_alias_history` row of the move, so a rollback can tell
    the moves that were themselves rollbacks from the ones it undoes.
    """

    __tablename__ = "prompt_promotions"
    __table_args__ = (Index("ix_prompt_promotions_alias", "prompt_name", "alias", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    prompt_name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_version: Mapped[int | None] = mapped_column(Integer, default=None)
    to_version: Mapped[int] = mapped_column(Integer)
    report_id: Mapped[str | None] = mapped_column(String(64), default=None)
    dataset_version: Mapped[str | None] = mapped_column(String(64), default=None)
    alias_event_id: Mapped[int | None] = mapped_column(Integer, default=None)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PromptRollout(Base):
    """A progressive delivery of a candidate prompt version behind an alias: a canary share
    of users (sticky by user id) and/or shadow runs, watched against thresholds.

    Status: active → promoted | rolled_back | stopped. At most one active rollout per
    (prompt, alias); starting one takes the write lock and checks.
    """

    __tablename__ = "prompt_rollouts"
    __table_args__ = (Index("ix_prompt_rollouts_alias", "prompt_name", "alias", "status"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100), index=True)
    prompt_name: Mapped[str] = mapped_column(String(100))
    alias: Mapped[str] = mapped_column(String(64))
    baseline_version: Mapped[int] = mapped_column(Integer)
    candidate_version: Mapped[int] = mapped_column(Integer)
    percent: Mapped[float] = mapped_column(Numeric(7, 4, asdecimal=False))
    shadow: Mapped[bool] = mapped_column(default=False)
    thresholds: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="active")
    reason: Mapped[str] = mapped_column(Text, default="")
    report_id: Mapped[str | None] = mapped_column(String(64), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_by: Mapped[str | None] = mapped_column(String(200), default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)


class RolloutRun(Base):
    """One finished run a rollout watches, by arm (baseline, canary, shadow), with the
    operational numbers the health check compares."""

    __tablename__ = "prompt_rollout_runs"
    __table_args__ = (Index("ix_prompt_rollout_runs_window", "rollout_id", "finished_at"),)

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    rollout_id: Mapped[str] = mapped_column(String(64))
    arm: Mapped[str] = mapped_column(String(16))
    failed: Mapped[bool] = mapped_column(default=False)
    latency_ms: Mapped[float] = mapped_column(default=0.0)
    cost_usd: Mapped[float] = mapped_column(Numeric(14, 6, asdecimal=False), default=0.0)
    finished_at: Mapped[datetime] = mapped_column()


class EvalScore(Base):
    """A score of one production run: from the run-time checks (`check`), online sampling
    (`online`) or a shadow run's judging (`shadow`). Per prompt version, these are what a
    rollout and `keel eval scores` read."""

    __tablename__ = "eval_scores"
    __table_args__ = (
        UniqueConstraint("run_id", "source", "metric", name="uq_eval_scores_metric"),
        Index("ix_eval_scores_version", "prompt_name", "prompt_version", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(100))
    prompt_name: Mapped[str | None] = mapped_column(String(100), default=None)
    prompt_version: Mapped[int | None] = mapped_column(Integer, default=None)
    source: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column()
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OnlineEval(Base):
    """A finished run waiting to be judged asynchronously (online sampling, shadow runs);
    the run-end listener only inserts the row, a periodic job scores it."""

    __tablename__ = "online_evals"
    __table_args__ = (Index("ix_online_evals_pending", "status", "created_at"),)

    run_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column(default=None)


# --- api (issue 4) --------------------------------------------------------------------


class IdempotencyRecord(Base):
    """One Idempotency-Key claim: in flight, then the response to replay until it expires.

    Unique per (tenant, user, key): the insert is the claim, so exactly one request wins
    on SQLite and PostgreSQL alike. `replay` says how to replay: `{"kind": "body"}` (the
    stored status, headers and body) or `{"kind": "events", "resource_id": …}` for
    streaming endpoints, which re-send the stored events of that resource instead.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "key", name="uq_idempotency_keys_scope"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="in_flight")
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    replay: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


__all__ = [
    "AgentVersion",
    "ApiKey",
    "Approval",
    "AuditEntry",
    "AuditHead",
    "Base",
    "Budget",
    "Conversation",
    "EvalReport",
    "Feedback",
    "IdempotencyRecord",
    "Prompt",
    "PromptAlias",
    "PromptAliasEvent",
    "PromptVersion",
    "Run",
    "RunEvent",
    "Tenant",
    "Turn",
    "UsageRecord",
    "VaultDataKey",
    "VaultSecret",
]
