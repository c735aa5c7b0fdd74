"""workspace_limiter.next_start_at: the workspace's shared start schedule (GCRA), which
replaces the token bucket (tokens, burst and refilled_at are no longer read)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspace_limiter") as batch:
        batch.add_column(sa.Column("next_start_at", sa.Float(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("workspace_limiter") as batch:
        batch.drop_column("next_start_at")
