"""evals tables (issue 6)

Revision ID: 0004
Revises: 0003
Reserved in the migration chain for this plane's tables; empty until the plane adds them.
"""

from __future__ import annotations

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
