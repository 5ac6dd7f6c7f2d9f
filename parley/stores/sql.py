"""The conversation log in SQL through SQLModel: SQLite by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, create_engine

from parley.core.desk import DeskPost
from parley.core.envelope import AnswerMeta, Envelope, Reply, Source, attachments_of
from parley.core.handoff import DESK
from parley.core.log import LoggedMessage
from parley.core.relay import Event
from parley.errors import Unavailable
from parley.stores.sql_batch import GroupCommit, Inbound, Replies
from parley.stores.sql_tables import (  # noqa: F401 - the tables are imported from here too
    Conversation, Feedback, HandoffEvent, Label, Message, ModelVersion, _now,
)


def open_database(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        database = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(database, "connect", _sqlite_pragmas)
        return database
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001 - DBAPI types
    # WAL lets the web threads read while a worker writes.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit survives a crash of
    # the process (only a power cut can lose the newest ones, never corrupt the file) and costs
    # no fsync, which otherwise caps the log at a few dozen answered messages a second.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SqlConversationLog:
    def __init__(self, database: Engine) -> None:
        self.database = database
        # The two writes on every message's path go through group commit (``sql_batch``).
        self._writes = GroupCommit(database)

    def create_schema(self) -> None:
        """Create or upgrade the tables through the Alembic migrations (``parley db upgrade``)."""
        from parley.stores.schema import upgrade

        upgrade(self.database)

    def record_inbound(self, envelope: Envelope) -> bool:
        return self._writes.write(Inbound(envelope))

    def record_replies(self, envelope: Envelope, replies: Sequence[Reply], *, events: Sequence[Event] = (),
                       rated: tuple[str, int] | None = None) -> bool:
        if not (replies or events or rated):
            return True
        return self._writes.write(Replies(envelope, tuple(replies), tuple(events), rated))

    def replies_to(self, envelope: Envelope) -> list[Reply] | None:
        query = select(Message).where(Message.in_reply_to == envelope.dedupe_key).order_by(Message.id)
        with self._session() as session:
            rows = session.scalars(query).all()
        if not rows:
            return None
        return [_row_reply(row, envelope) for row in rows]

    def has_conversation(self, conversation_id: str, channel: str) -> bool:
        with self._session() as session:
            conversation = session.get(Conversation, conversation_id)
        return conversation is not None and conversation.channel == channel

    def transcript(self, conversation_id: str, channel: str) -> list[LoggedMessage] | None:
        # The posts to the reps' thread are logged for retries, and are not the customer's to see; a
        # reply is shown for its text or its files.
        shown = (Message.text != "") | (Message.direction == "in") | Message.files.is_not(None)
        query = (select(Message).where(Message.conversation_id == conversation_id, Message.channel != DESK, shown)
                 .order_by(Message.id))
        with self._session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.channel != channel:
                return None
            rows = session.scalars(query).all()
        return [_logged(row) for row in rows]

    def record_feedback(self, *, conversation_id: str, channel: str, message_id: str, score: int,
                        comment: str | None = None, kind: str = "answer") -> bool:
        """Store (or change) the verdict on a bot message; False when no such bot message exists."""
        # A second pass only when two clicks raced to insert: the other won, this one is a change.
        for _ in range(2):
            with self._session() as session:
                message = session.scalars(select(Message).where(Message.public_id == message_id)).first()
                if (message is None or message.direction != "out" or message.channel != channel
                        or message.conversation_id != conversation_id):
                    return False
                existing = session.scalars(select(Feedback).where(Feedback.message_id == message_id)).first()
                row = existing or Feedback(message_id=message_id, conversation_id=conversation_id, score=score)
                row.score, row.comment, row.kind, row.created_at = score, comment, kind, _now()
                session.add(row)
                if commit_unless_duplicate(session):
                    return True
        return False

    def record_handoff_event(self, *, conversation_id: str, kind: str, reason: str | None = None,
                             actor: str | None = None) -> None:
        with self._session() as session:
            session.add(HandoffEvent(conversation_id=conversation_id, kind=kind, reason=reason,
                                     actor=actor))
            session.commit()

    def tokens_used_since(self, since: datetime) -> int:
        """LLM tokens (prompt + completion) billed for replies written since ``since``."""
        query = select(func.coalesce(func.sum(Message.prompt_tokens), 0)
                       + func.coalesce(func.sum(Message.completion_tokens), 0)
                       ).where(Message.created_at >= since)
        with self._session() as session:
            return int(session.execute(query).scalar_one())

    def ping(self) -> None:
        with self._session() as session:
            session.execute(text("SELECT 1"))

    def _session(self) -> _GuardedSession:
        return _GuardedSession(self.database)


class _GuardedSession(Session):
    """A session whose connection failures surface as ``Unavailable``."""

    def __exit__(self, kind, value, traceback):  # noqa: ANN001 - context manager protocol
        super().__exit__(kind, value, traceback)
        if isinstance(value, OperationalError):
            raise Unavailable(f"database unreachable: {value.orig}") from value


def commit_unless_duplicate(session: Session) -> bool:
    """Commit; False (rolled back) when a unique key says the row is already there."""
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def _sources(row: Message) -> tuple[Source, ...]:
    return tuple(Source(**source) for source in json.loads(row.sources))


def _row_reply(row: Message, envelope: Envelope) -> Reply:
    meta = AnswerMeta(engine=row.engine or "dialogue", confidence=row.confidence, sources=_sources(row),
                      cached=row.cached, latency_ms=row.latency_ms, model_version=row.model_version,
                      model=row.model, prompt_tokens=row.prompt_tokens,
                      completion_tokens=row.completion_tokens,
                      intent=row.intent)
    route = envelope.route if row.route is None else json.loads(row.route)
    desk = DeskPost(**json.loads(row.desk)) if row.desk else None
    return Reply(conversation_id=row.conversation_id, channel=row.channel, text=row.text,
                 route=route, desk=desk, in_reply_to=envelope.message_id,
                 quick_replies=tuple(json.loads(row.quick_replies)), meta=meta, author=row.author,
                 reply_id=row.public_id, language=row.language,
                 files=attachments_of(json.loads(row.files)) if row.files else ())


def _logged(row: Message) -> LoggedMessage:
    # SQLite hands back naive datetimes; they were written in UTC.
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return LoggedMessage(id=row.public_id, direction="in" if row.direction == "in" else "out",
                         text=row.text, created_at=created.timestamp(), sources=_sources(row),
                         author=row.author, quick_replies=tuple(json.loads(row.quick_replies)),
                         files=attachments_of(json.loads(row.files)) if row.files else ())
