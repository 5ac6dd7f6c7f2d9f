"""The conversation log answers "does this conversation exist?" without reading its messages."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event

from parley.core.envelope import Envelope
from parley.stores.sql import SqlConversationLog, open_database


def test_has_conversation_is_one_key_look_up_scoped_by_channel(tmp_path: Path, database: dict[str, str]) -> None:
    url = database.get("DATABASE_URL", f"sqlite:///{tmp_path / 'parley.db'}")
    log = SqlConversationLog(open_database(url.replace("postgresql://", "postgresql+psycopg://")))
    log.create_schema()
    log.record_inbound(Envelope(channel="widget", conversation_id="w1234567890", message_id="m1",
                                sender="w1234567890", text="hello"))
    statements: list[str] = []
    event.listen(log.database, "before_cursor_execute",
                 lambda _conn, _cursor, statement, *_: statements.append(statement))

    assert log.has_conversation("w1234567890", "widget")
    assert not log.has_conversation("w1234567890", "slack")
    assert not log.has_conversation("w-unknown-000", "widget")
    assert statements and all("FROM conversation" in s and "message" not in s for s in statements)
    log.database.dispose()
