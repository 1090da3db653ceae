"""api tables (issue 4)

Revision ID: 0005
Revises: 0004
Reserved in the migration chain for this plane's tables; empty until the plane adds them.
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
