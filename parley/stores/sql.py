"""The conversation log in SQL through SQLModel: SQLite by default, PostgreSQL via DATABASE_URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, event, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Field, Session, SQLModel, create_engine

from parley.core.envelope import AnswerMeta, Envelope, Reply, Source
from parley.core.log import LoggedMessage
from parley.errors import Unavailable


def _now() -> datetime:
    return datetime.now(UTC)


class Conversation(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=200)
    channel: str = Field(index=True, max_length=32)
    customer: str = Field(max_length=200)
    started_at: datetime = Field(default_factory=_now, index=True)
    updated_at: datetime = Field(default_factory=_now)


class Message(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    # The platform's message id (inbound, channel-scoped) or our reply id (outbound): unique, so a
    # retried webhook or a re-run worker can never store the same message twice.
    public_id: str = Field(unique=True, max_length=200)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=200)
    direction: str = Field(max_length=3)
    channel: str = Field(max_length=32)
    text: str
    created_at: datetime = Field(default_factory=_now, index=True)
    in_reply_to: str | None = Field(default=None, index=True, max_length=200)
    author: str | None = None
    engine: str | None = None
    intent: str | None = Field(default=None, max_length=200)
    confidence: float | None = None
    sources: str = "[]"
    quick_replies: str = "[]"
    latency_ms: float | None = None
    cached: bool = False
    model_version: str | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _sqlite_pragmas(connection, _record) -> None:  # noqa: ANN001 - DBAPI types
    # WAL lets the web threads read while a worker writes.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SqlConversationLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        SQLModel.metadata.create_all(self.engine)

    def record_inbound(self, envelope: Envelope) -> bool:
        with self._session() as session:
            if session.get(Conversation, envelope.conversation_id) is None:
                session.add(Conversation(id=envelope.conversation_id, channel=envelope.channel,
                                         customer=envelope.sender))
            session.add(Message(public_id=envelope.dedupe_key, conversation_id=envelope.conversation_id,
                                direction="in", channel=envelope.channel, text=envelope.text,
                                created_at=datetime.fromtimestamp(envelope.timestamp, UTC)))
            return _commit_unless_duplicate(session)

    def record_replies(self, envelope: Envelope, replies: Sequence[Reply]) -> None:
        with self._session() as session:
            for reply in replies:
                session.add(_reply_row(reply, in_reply_to=envelope.dedupe_key))
            conversation = session.get(Conversation, envelope.conversation_id)
            if conversation is not None:
                conversation.updated_at = _now()
            _commit_unless_duplicate(session)

    def replies_to(self, envelope: Envelope) -> list[Reply] | None:
        query = select(Message).where(Message.in_reply_to == envelope.dedupe_key).order_by(Message.id)
        with self._session() as session:
            rows = session.scalars(query).all()
        if not rows:
            return None
        return [_row_reply(row, envelope) for row in rows]

    def transcript(self, conversation_id: str, channel: str) -> list[LoggedMessage] | None:
        query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        with self._session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.channel != channel:
                return None
            rows = session.scalars(query).all()
        return [_logged(row) for row in rows]

    def ping(self) -> None:
        with self._session() as session:
            session.execute(text("SELECT 1"))

    def _session(self) -> _GuardedSession:
        return _GuardedSession(self.engine)


class _GuardedSession(Session):
    """A session whose connection failures surface as ``Unavailable``."""

    def __exit__(self, kind, value, traceback):  # noqa: ANN001 - context manager protocol
        super().__exit__(kind, value, traceback)
        if isinstance(value, OperationalError):
            raise Unavailable(f"database unreachable: {value.orig}") from value


def _commit_unless_duplicate(session: Session) -> bool:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def _reply_row(reply: Reply, *, in_reply_to: str) -> Message:
    meta = reply.meta
    return Message(
        public_id=reply.reply_id, conversation_id=reply.conversation_id, direction="out",
        channel=reply.channel, text=reply.text, in_reply_to=in_reply_to, author=reply.author,
        engine=meta.engine, intent=meta.intent, confidence=meta.confidence,
        sources=json.dumps([{"id": s.id, "title": s.title} for s in meta.sources]),
        quick_replies=json.dumps(list(reply.quick_replies)), latency_ms=meta.latency_ms,
        cached=meta.cached, model_version=meta.model_version,
    )


def _sources(row: Message) -> tuple[Source, ...]:
    return tuple(Source(**source) for source in json.loads(row.sources))


def _row_reply(row: Message, envelope: Envelope) -> Reply:
    meta = AnswerMeta(engine=row.engine or "dialogue", confidence=row.confidence, sources=_sources(row),
                      cached=row.cached, latency_ms=row.latency_ms, model_version=row.model_version,
                      intent=row.intent)
    return Reply(conversation_id=row.conversation_id, channel=row.channel, text=row.text,
                 route=envelope.route, in_reply_to=envelope.message_id,
                 quick_replies=tuple(json.loads(row.quick_replies)), meta=meta, author=row.author,
                 reply_id=row.public_id)


def _logged(row: Message) -> LoggedMessage:
    # SQLite hands back naive datetimes; they were written in UTC.
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return LoggedMessage(id=row.public_id, direction="in" if row.direction == "in" else "out",
                         text=row.text, created_at=created.timestamp(), sources=_sources(row),
                         author=row.author, quick_replies=tuple(json.loads(row.quick_replies)))
