"""agents.secret_version (derived per-agent signing secrets, rotated by version) and
attempts.heard_at (when the provider last reported on a dial)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("secret_version", sa.Integer(), server_default="1", nullable=False)
        )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("heard_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("heard_at")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("secret_version")
