"""Retry policy per outcome (issue 11, item 2): a batch's rules over its smartCallbackConfig,
and a workspace's default; validated JSON, NULL meaning none (as before)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("retry_policy", sa.JSON(), nullable=True))
    with op.batch_alter_table("workspaces") as workspace:
        workspace.add_column(sa.Column("retry_policy", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as workspace:
        workspace.drop_column("retry_policy")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("retry_policy")
