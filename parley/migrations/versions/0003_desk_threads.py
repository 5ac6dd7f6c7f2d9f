"""Human handoff: which reps' Slack thread belongs to which conversation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deskthread",
        sa.Column("thread_ts", sa.String(length=32), primary_key=True),
        sa.Column("desk_channel", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=200), sa.ForeignKey("conversation.id"),
                  nullable=False),
        sa.Column("handoff", sa.Integer(), nullable=False),
        sa.Column("rep_user", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("conversation_id", "handoff", name="uq_deskthread_handoff"),
    )
    op.create_index("ix_deskthread_conversation_id", "deskthread", ["conversation_id"])
    op.create_index("ix_deskthread_rep_user", "deskthread", ["rep_user"])
    op.create_index("ix_deskthread_updated_at", "deskthread", ["updated_at"])


def downgrade() -> None:
    op.drop_table("deskthread")
