"""Per-batch concurrency and priority (issue 11, item 7): `max_concurrency` caps how many of
a batch's calls are live at once (NULL: only the workspace's cap), and `priority` orders the
workspace's batches in the claim (higher first; 0 for every batch that exists already)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("max_concurrency", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("priority")
        batch.drop_column("max_concurrency")
