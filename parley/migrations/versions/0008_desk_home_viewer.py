"""The reps who opened the desk's App Home tab, so it is republished for them when requests change.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deskhomeviewer",
        sa.Column("rep_user", sa.String(length=32), primary_key=True),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_deskhomeviewer_opened_at", "deskhomeviewer", ["opened_at"])


def downgrade() -> None:
    op.drop_table("deskhomeviewer")
