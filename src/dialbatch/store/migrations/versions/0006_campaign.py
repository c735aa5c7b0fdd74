"""Campaign steering: paused batches and workspaces, retry batches linked to their
parent, and Idempotency-Key records of batch creation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("paused_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("paused_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("parent_batch_id", sa.String(64), nullable=True))
    op.create_index(
        "ix_batches_parent",
        "batches",
        ["parent_batch_id"],
        sqlite_where=sa.text("parent_batch_id IS NOT NULL"),
        postgresql_where=sa.text("parent_batch_id IS NOT NULL"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "key"),
    )
    op.create_index("ix_idempotency_keys_expires", "idempotency_keys", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_expires", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_batches_parent", table_name="batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("parent_batch_id")
        batch.drop_column("paused_at")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("paused_at")
