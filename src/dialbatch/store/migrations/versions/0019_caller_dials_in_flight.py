"""Caller numbers' per-second limits kept at the carrier, whatever the placement takes:
`caller_dials.in_flight`, the dial's key while its request is out. Once the provider answers,
the row's `at` becomes the time of the answer (store/caller_dials.py).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("caller_dials") as batch:
        batch.add_column(sa.Column("in_flight", sa.String(64), nullable=True))
    op.create_index(
        "ix_caller_dials_in_flight",
        "caller_dials",
        ["workspace_id", "from_number", "in_flight"],
        sqlite_where=sa.text("in_flight IS NOT NULL"),
        postgresql_where=sa.text("in_flight IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_caller_dials_in_flight", table_name="caller_dials")
    with op.batch_alter_table("caller_dials") as batch:
        batch.drop_column("in_flight")
