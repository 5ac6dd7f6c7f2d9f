"""Posts to the reps' thread say what they are in a column of their own, not in their route.

The desk's kind, handoff number and customer channel travelled as keys of the route; they are now
``core.desk.DeskPost``, stored as JSON in ``message.desk``. Logged posts are moved over, so a retry
replays them as the new code expects.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import context, op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_DESK_KEYS = ("kind", "handoff", "customer_channel")


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("desk", sa.String(), nullable=True))
    if context.is_offline_mode():
        # ``parley db upgrade --sql`` cannot read rows. Unmoved posts still reach the desk, which
        # reads their route the old way (``DeskPost.from_route``).
        return
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, route FROM message WHERE channel = 'desk'")).all()
    for row_id, route in rows:
        old = json.loads(route or "{}")
        handoff = str(old.get("handoff", "0"))
        desk = {"kind": old.get("kind", "error"), "handoff": int(handoff) if handoff.isdigit() else 0,
                "customer_channel": old.get("customer_channel", "")}
        rest = {key: value for key, value in old.items() if key not in _DESK_KEYS}
        connection.execute(sa.text("UPDATE message SET desk = :desk, route = :route WHERE id = :id"),
                           {"desk": json.dumps(desk), "route": json.dumps(rest), "id": row_id})


def downgrade() -> None:
    if context.is_offline_mode():
        raise RuntimeError("0005 moves data back into the route: run this downgrade without --sql")
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, route, desk FROM message WHERE desk IS NOT NULL")).all()
    for row_id, route, desk in rows:
        post = json.loads(desk)
        old = {**json.loads(route or "{}"), "kind": post["kind"], "handoff": str(post["handoff"]),
               "customer_channel": post["customer_channel"]}
        connection.execute(sa.text("UPDATE message SET route = :route WHERE id = :id"),
                           {"route": json.dumps(old), "id": row_id})
    with op.batch_alter_table("message") as batch:
        batch.drop_column("desk")
