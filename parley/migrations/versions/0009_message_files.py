"""A message keeps its files: a customer's (what they were, for the export) and a reply's (where to
fetch each, so a retry sends the same files).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Null on every message logged before, and on every message without files.
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("files", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("files")
