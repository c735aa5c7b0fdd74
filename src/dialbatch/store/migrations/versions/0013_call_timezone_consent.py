"""A recipient's own time zone and consent on each call, and requireConsent (issue 10,
item 6 and the CSV `timezone` column)

calls.timezone: the row's IANA zone from the upload's `timezone` column (NULL: inferred
from the number). calls.consent_basis / calls.consent_at: the row's consent record (NULL:
none given). workspaces.require_consent: the workspace's floor; batches.require_consent:
what the batch was created under (its own flag or the workspace's).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        batch.add_column(sa.Column("consent_basis", sa.Text(), nullable=True))
        batch.add_column(sa.Column("consent_at", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(
            sa.Column("require_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("batches") as batch:
        batch.add_column(
            sa.Column("require_consent", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("require_consent")
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("require_consent")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("consent_at")
        batch.drop_column("consent_basis")
        batch.drop_column("timezone")
