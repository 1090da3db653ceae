"""evals delivery (issue 6): promotion reports, rollouts, canary, shadow

Revision ID: 0007
Revises: 0006
Reserved in the migration chain for this plane's tables; empty until the plane adds them.
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
