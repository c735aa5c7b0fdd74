"""Every decision of the pre-dial gate, in order (issue 11 item 3, issue 10 item 7):
`gate_log`, one row per hold or refusal, so that a call's history shows the gate's decisions
between its dials, not only the latest (`calls.gate_decision`).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigInt = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gate_log",
        sa.Column("id", BigInt, primary_key=True, autoincrement=True),
        sa.Column(
            "call_id",
            sa.BigInteger,
            sa.ForeignKey("calls.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("after_dials", sa.Integer, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("decision", sa.JSON, nullable=False),
    )
    op.create_index("ix_gate_log_call", "gate_log", ["call_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_gate_log_call", table_name="gate_log")
    op.drop_table("gate_log")
