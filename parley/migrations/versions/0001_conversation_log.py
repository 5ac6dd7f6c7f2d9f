"""The conversation log: conversations and their messages (the schema before migrations existed).

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation",
        sa.Column("id", sa.String(length=200), primary_key=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("customer", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_conversation_channel", "conversation", ["channel"])
    op.create_index("ix_conversation_started_at", "conversation", ["started_at"])
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("public_id", sa.String(length=200), nullable=False, unique=True),
        sa.Column("conversation_id", sa.String(length=200), sa.ForeignKey("conversation.id"),
                  nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("in_reply_to", sa.String(length=200), nullable=True),
        sa.Column("author", sa.String(), nullable=True),
        sa.Column("engine", sa.String(), nullable=True),
        sa.Column("intent", sa.String(length=200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("sources", sa.String(), nullable=False),
        sa.Column("quick_replies", sa.String(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("model_version", sa.String(), nullable=True),
    )
    op.create_index("ix_message_conversation_id", "message", ["conversation_id"])
    op.create_index("ix_message_created_at", "message", ["created_at"])
    op.create_index("ix_message_in_reply_to", "message", ["in_reply_to"])


def downgrade() -> None:
    op.drop_table("message")
    op.drop_table("conversation")
