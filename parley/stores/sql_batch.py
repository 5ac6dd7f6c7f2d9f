"""Group commit for the conversation log: many workers' writes, one transaction.

Every answered message is written twice (the customer's message before the dialogue runs, its
replies after), and each write must be durable before its worker goes on: the replies are logged
before they are sent, so that a retry replays them. A transaction per write makes the database's
round trips and commits the cost of a message. Here a worker queues its write, and the first
worker to find the writer free commits everything queued so far in one transaction, with one
multi-row statement per table. A lone worker waits for nothing (its batch is itself); under load a
batch holds whatever arrived while the previous one committed.

A duplicate (a retried webhook, a re-run worker) is not an error: the unique key on
``message.public_id`` skips it (``ON CONFLICT DO NOTHING``). Any other row the database refuses
fails only its own write: the batch is then retried one write at a time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from parley.core.envelope import Envelope, Reply
from parley.errors import ConfigError, Unavailable
from parley.stores.sql_tables import Conversation, Message

# The dialects whose INSERT has ON CONFLICT DO NOTHING ... RETURNING, which the log relies on.
_INSERTS: dict[str, Callable[..., Any]] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
# Bounds one transaction (and its statements' size) when a backlog has built up.
BATCH_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Inbound:
    """A customer's message; its result says whether it was stored now (False: stored before)."""

    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Replies:
    """The replies to a message, in order."""

    envelope: Envelope
    replies: tuple[Reply, ...]


Write = Inbound | Replies


class _Ticket:
    __slots__ = ("write", "finished", "result", "error")

    def __init__(self, write: Write) -> None:
        self.write = write
        self.finished = False
        self.result = False
        self.error: BaseException | None = None

    def finish(self, result: bool = False, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True


class GroupCommit:
    """``write`` blocks until the write is committed (with others'), like a transaction of its own."""

    def __init__(self, database: Engine) -> None:
        insert = _INSERTS.get(database.dialect.name)
        if insert is None:
            raise ConfigError(f"storage.database_url: {database.dialect.name} is not supported "
                              "(use SQLite or PostgreSQL)")
        self._database = database
        self._insert = insert
        self._queue: list[_Ticket] = []
        self._queue_lock = threading.Lock()
        # Held by the worker committing a batch; the others queue up behind it (the next batch).
        self._writer = threading.Lock()

    def write(self, write: Write) -> bool:
        ticket = _Ticket(write)
        with self._queue_lock:
            self._queue.append(ticket)
        while not ticket.finished:
            with self._writer:
                if ticket.finished:  # the worker before us committed our write with its batch
                    break
                with self._queue_lock:
                    batch, self._queue = self._queue[:BATCH_LIMIT], self._queue[BATCH_LIMIT:]
                self._commit(batch)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _commit(self, batch: list[_Ticket]) -> None:
        try:
            results = self._in_one_transaction([ticket.write for ticket in batch])
        except OperationalError as exc:
            for ticket in batch:
                ticket.finish(error=Unavailable(f"database unreachable: {exc.orig}"))
        except Exception as exc:
            if len(batch) == 1:
                batch[0].finish(error=exc)
            else:  # one bad row must not fail the others: find it by writing one at a time
                for ticket in batch:
                    self._commit([ticket])
        else:
            for ticket, result in zip(batch, results, strict=True):
                ticket.finish(result)

    def _in_one_transaction(self, writes: Sequence[Write]) -> list[bool]:
        inbound = [write.envelope for write in writes if isinstance(write, Inbound)]
        replies = [write for write in writes if isinstance(write, Replies)]
        with self._database.begin() as connection:
            stored = self._insert_inbound(connection, inbound) if inbound else set()
            if replies:
                self._insert_replies(connection, replies)
        # Two copies of one message in a batch (a platform's retry racing the original): the first
        # is the one stored now, the second was stored before.
        taken: set[str] = set()
        results = []
        for write in writes:
            if isinstance(write, Inbound):
                key = write.envelope.dedupe_key
                results.append(key in stored and key not in taken)
                taken.add(key)
            else:
                results.append(True)
        return results

    def _insert_inbound(self, connection: Connection, envelopes: list[Envelope]) -> set[str]:
        now = _now()
        conversations = {envelope.conversation_id: {
            "id": envelope.conversation_id, "channel": envelope.channel, "customer": envelope.sender,
            "started_at": now, "updated_at": now} for envelope in reversed(envelopes)}
        connection.execute(self._insert(Conversation).on_conflict_do_nothing(), list(conversations.values()))
        rows = [_message(public_id=envelope.dedupe_key, conversation_id=envelope.conversation_id,
                         direction="in", channel=envelope.channel, text=envelope.text,
                         created_at=datetime.fromtimestamp(envelope.timestamp, UTC))
                for envelope in envelopes]
        statement = self._insert(Message).on_conflict_do_nothing().returning(Message.public_id)
        return set(connection.execute(statement, rows).scalars())

    def _insert_replies(self, connection: Connection, writes: list[Replies]) -> None:
        rows = [_reply(reply, in_reply_to=write.envelope.dedupe_key)
                for write in writes for reply in write.replies]
        if rows:
            connection.execute(self._insert(Message).on_conflict_do_nothing(), rows)
        conversations = {write.envelope.conversation_id for write in writes}
        connection.execute(update(Conversation).where(Conversation.id.in_(conversations))
                           .values(updated_at=_now()))


def _now() -> datetime:
    return datetime.now(UTC)


def _message(**values: Any) -> dict[str, Any]:
    # A multi-row INSERT needs every row to name the same columns.
    return {"in_reply_to": None, "author": None, "engine": None, "intent": None, "confidence": None,
            "sources": "[]", "quick_replies": "[]", "latency_ms": None, "cached": False,
            "model_version": None, "model": None, "prompt_tokens": None, "completion_tokens": None,
            "route": None, "desk": None, **values}


def _reply(reply: Reply, *, in_reply_to: str) -> dict[str, Any]:
    meta = reply.meta
    return _message(
        public_id=reply.reply_id, conversation_id=reply.conversation_id, direction="out",
        channel=reply.channel, text=reply.text, created_at=_now(), in_reply_to=in_reply_to,
        author=reply.author, engine=meta.engine, intent=meta.intent, confidence=meta.confidence,
        sources=json.dumps([{"id": s.id, "title": s.title} for s in meta.sources]),
        quick_replies=json.dumps(list(reply.quick_replies)), latency_ms=meta.latency_ms,
        cached=meta.cached, model_version=meta.model_version, model=meta.model,
        prompt_tokens=meta.prompt_tokens, completion_tokens=meta.completion_tokens,
        route=json.dumps(dict(reply.route)),
        desk=json.dumps(asdict(reply.desk)) if reply.desk is not None else None,
    )
