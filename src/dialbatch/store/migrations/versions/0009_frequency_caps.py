"""frequency caps: the workspace's caps, a ledger of dials per number, and the gate's last
decision on each call

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("frequency_caps", sa.JSON(), nullable=True))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("gate_decision", sa.JSON(), nullable=True))
    op.create_table(
        "number_dials",
        sa.Column("dial_key", sa.String(64), primary_key=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("phone_number", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_number_dials_number", "number_dials", ["workspace_id", "phone_number", "at"]
    )
    op.create_index("ix_number_dials_at", "number_dials", ["at"])


def downgrade() -> None:
    op.drop_index("ix_number_dials_at", table_name="number_dials")
    op.drop_index("ix_number_dials_number", table_name="number_dials")
    op.drop_table("number_dials")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("gate_decision")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("frequency_caps")
