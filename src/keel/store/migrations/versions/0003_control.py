"""control plane tables (issue 5)

Revision ID: 0003
Revises: 0002
Reserved in the migration chain for this plane's tables; empty until the plane adds them.
"""

from __future__ import annotations

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
