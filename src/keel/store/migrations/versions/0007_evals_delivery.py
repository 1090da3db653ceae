"""evals delivery (issue 6): promotions, rollouts (canary, shadow), run scores, online evals

Revision ID: 0007
Revises: 0006
Tables of the delivery half of the eval plane: `prompt_promotions` (every gated alias
move), `prompt_rollouts` and `prompt_rollout_runs` (canary and shadow rollouts and the
runs they watch), `eval_scores` (run-time check, online and shadow scores per run) and
`online_evals` (runs waiting to be judged asynchronously).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import keel.store.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_scores",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("prompt_name", sa.String(length=100), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", keel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_scores")),
        sa.UniqueConstraint("run_id", "source", "metric", name="uq_eval_scores_metric"),
    )
    with op.batch_alter_table("eval_scores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_scores_run_id"), ["run_id"], unique=False)
        batch_op.create_index(
            "ix_eval_scores_version", ["prompt_name", "prompt_version", "created_at"], unique=False
        )

    op.create_table(
        "online_evals",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", keel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("scored_at", keel.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_online_evals")),
    )
    with op.batch_alter_table("online_evals", schema=None) as batch_op:
        batch_op.create_index("ix_online_evals_pending", ["status", "created_at"], unique=False)

    op.create_table(
        "prompt_promotions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("prompt_name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.Column("dataset_version", sa.String(length=64), nullable=True),
        sa.Column("alias_event_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", keel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_promotions")),
    )
    with op.batch_alter_table("prompt_promotions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prompt_promotions_alias", ["prompt_name", "alias", "created_at"], unique=False
        )

    op.create_table(
        "prompt_rollout_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("rollout_id", sa.String(length=64), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=14, scale=6, asdecimal=False), nullable=False),
        sa.Column("finished_at", keel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_prompt_rollout_runs")),
    )
    with op.batch_alter_table("prompt_rollout_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prompt_rollout_runs_window", ["rollout_id", "finished_at"], unique=False
        )

    op.create_table(
        "prompt_rollouts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("prompt_name", sa.String(length=100), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("percent", sa.Numeric(precision=7, scale=4, asdecimal=False), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column(
            "thresholds",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("report_id", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", keel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_by", sa.String(length=200), nullable=True),
        sa.Column("ended_at", keel.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", keel.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompt_rollouts")),
    )
    with op.batch_alter_table("prompt_rollouts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prompt_rollouts_agent"), ["agent"], unique=False)
        batch_op.create_index(
            "ix_prompt_rollouts_alias", ["prompt_name", "alias", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("prompt_rollouts", schema=None) as batch_op:
        batch_op.drop_index("ix_prompt_rollouts_alias")
        batch_op.drop_index(batch_op.f("ix_prompt_rollouts_agent"))

    op.drop_table("prompt_rollouts")
    with op.batch_alter_table("prompt_rollout_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_prompt_rollout_runs_window")

    op.drop_table("prompt_rollout_runs")
    with op.batch_alter_table("prompt_promotions", schema=None) as batch_op:
        batch_op.drop_index("ix_prompt_promotions_alias")

    op.drop_table("prompt_promotions")
    with op.batch_alter_table("online_evals", schema=None) as batch_op:
        batch_op.drop_index("ix_online_evals_pending")

    op.drop_table("online_evals")
    with op.batch_alter_table("eval_scores", schema=None) as batch_op:
        batch_op.drop_index("ix_eval_scores_version")
        batch_op.drop_index(batch_op.f("ix_eval_scores_run_id"))

    op.drop_table("eval_scores")
