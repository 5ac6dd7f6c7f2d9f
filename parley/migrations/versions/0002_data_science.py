"""Data for data scientists: handoff events, feedback, labels, model versions; export index;
LLM accounting on messages (model, prompt and completion tokens).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("model", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("prompt_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("completion_tokens", sa.Integer(), nullable=True))
        batch.create_index("ix_message_channel_created_at", ["channel", "created_at"])
    op.create_table(
        "handoffevent",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(length=200), sa.ForeignKey("conversation.id"),
                  nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_handoffevent_conversation_id", "handoffevent", ["conversation_id"])
    op.create_index("ix_handoffevent_created_at", "handoffevent", ["created_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(length=200), sa.ForeignKey("message.public_id"),
                  nullable=False, unique=True),
        sa.Column("conversation_id", sa.String(length=200), sa.ForeignKey("conversation.id"),
                  nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])
    op.create_index("ix_feedback_created_at", "feedback", ["created_at"])
    op.create_table(
        "label",
        sa.Column("message_id", sa.String(length=200), sa.ForeignKey("message.public_id"),
                  primary_key=True),
        sa.Column("intent", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_label_intent", "label", ["intent"])
    op.create_table(
        "modelversion",
        sa.Column("version", sa.String(length=64), primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("artefact", sa.String(length=200), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("metrics", sa.String(), nullable=False),
        sa.Column("params", sa.String(), nullable=False),
        sa.Column("data_from", sa.DateTime(), nullable=True),
        sa.Column("data_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_modelversion_active", "modelversion", ["active"])


def downgrade() -> None:
    op.drop_table("modelversion")
    op.drop_table("label")
    op.drop_table("feedback")
    op.drop_table("handoffevent")
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_channel_created_at")
        batch.drop_column("completion_tokens")
        batch.drop_column("prompt_tokens")
        batch.drop_column("model")
