"""The gate's standing hold on a call (issue 10, item 7): `calls.gate_hold`, the kind of the
gate decision that holds the call back now (outside_window, capped) or refused it
(suppressed, no_zone, ...), NULL once the call is claimed again. A partial index over the
few calls that have one makes the batch's `gate` summary a short index-only count.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 12:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("gate_hold", sa.String(16), nullable=True))
    op.create_index(
        "ix_calls_gate_hold",
        "calls",
        ["batch_id", "gate_hold", "status", "next_attempt_at"],
        sqlite_where=sa.text("gate_hold IS NOT NULL"),
        postgresql_where=sa.text("gate_hold IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_calls_gate_hold", table_name="calls")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("gate_hold")
