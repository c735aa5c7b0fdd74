"""Rule packs and the workspace's default window (issue 10, items 1 and 2): the workspace's
`complianceProfile` and default `callingWindow`, and the profile each batch was created with

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as ws:
        ws.add_column(
            sa.Column("compliance_profile", sa.String(16), nullable=False, server_default="none")
        )
        ws.add_column(sa.Column("calling_window", sa.JSON(), nullable=True))
    with op.batch_alter_table("batches") as batch:
        batch.add_column(
            sa.Column("compliance_profile", sa.String(16), nullable=False, server_default="none")
        )


def downgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("compliance_profile")
    with op.batch_alter_table("workspaces") as ws:
        ws.drop_column("calling_window")
        ws.drop_column("compliance_profile")
