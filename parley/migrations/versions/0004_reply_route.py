"""Replies keep their route, and the posts to the reps' thread are logged: a retry resends them all.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("route", sa.String(), nullable=True))


def downgrade() -> None:
    # The desk rows only existed for retries; older code would show them to customers.
    op.execute("DELETE FROM message WHERE channel = 'desk'")
    with op.batch_alter_table("message") as batch:
        batch.drop_column("route")
