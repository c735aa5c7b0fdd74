"""Caller-number pools (issue 11 item 6): `agents.caller_limits`, the per-number limits of an
agent's caller numbers, and `caller_dials`, the ledger of which caller number each dial
showed, which the pool's rotation and limits count.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("caller_limits", sa.JSON(), nullable=True))
    op.create_table(
        "caller_dials",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_caller_dials_number", "caller_dials", ["workspace_id", "from_number", "at"])


def downgrade() -> None:
    op.drop_index("ix_caller_dials_number", table_name="caller_dials")
    op.drop_table("caller_dials")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("caller_limits")
