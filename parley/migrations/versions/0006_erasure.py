"""GDPR erasure tombstones and the cluster-wide schedule of periodic jobs (retention).

``erasure`` lists erased conversations by digest (no personal data) so export never writes them
again; ``periodicrun`` lets exactly one process run each slot of a periodic job.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure",
        sa.Column("subject", sa.String(length=64), primary_key=True),
        sa.Column("pseudonym", sa.String(length=64), nullable=True),
        sa.Column("request", sa.String(length=32), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_erasure_request", "erasure", ["request"])
    op.create_table(
        "periodicrun",
        sa.Column("job", sa.String(length=64), primary_key=True),
        sa.Column("slot", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("periodicrun")
    op.drop_table("erasure")
