"""Attempt history and automatic stop on failure spikes: the caller number and the batch of
each dial (with an index on the batch's latest ended dials), the batch's and workspace's
failureStop settings, and the reason and resume time of a batch's pause

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("from_number", sa.String(32), nullable=True))
        batch.add_column(sa.Column("batch_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_attempts_batch_ended",
        "attempts",
        ["batch_id", "ended_at"],
        sqlite_where=sa.text("ended_at IS NOT NULL"),
        postgresql_where=sa.text("ended_at IS NOT NULL"),
    )
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("failure_stop", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("resumed_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("failure_stop", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("failure_stop")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("resumed_at")
        batch.drop_column("pause_reason")
        batch.drop_column("failure_stop")
    op.drop_index("ix_attempts_batch_ended", table_name="attempts")
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("batch_id")
        batch.drop_column("from_number")
