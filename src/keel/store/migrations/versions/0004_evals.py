"""evals tables (issue 6)

Revision ID: 0004
Revises: 0003
Gate reports of the eval plane (`eval_reports`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import keel.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_reports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("agent", sa.String(length=100), nullable=False),
        sa.Column("prompt_name", sa.String(length=100), nullable=False),
        sa.Column("candidate_version", sa.Integer(), nullable=False),
        sa.Column("baseline_version", sa.Integer(), nullable=False),
        sa.Column("dataset_version", sa.String(length=64), nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=8), nullable=False),
        sa.Column(
            "report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", keel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eval_reports")),
    )
    with op.batch_alter_table("eval_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_eval_reports_agent"), ["agent"], unique=False)
        batch_op.create_index(
            "ix_eval_reports_lookup",
            ["prompt_name", "candidate_version", "baseline_version", "dataset_version", "created_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("eval_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_eval_reports_lookup")
        batch_op.drop_index(batch_op.f("ix_eval_reports_agent"))
    op.drop_table("eval_reports")
