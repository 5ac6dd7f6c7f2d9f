"""Group commit for the conversation log: many workers' writes, one transaction.

Every answered message is written twice (the customer's message before the dialogue runs, its
replies after), and each write must be durable before its worker goes on: the replies are logged
before they are sent, so that a retry replays them. A transaction per write makes the database's
round trips and commits the cost of a message. Here a worker queues its write, and the first
worker to find the writer free commits everything queued so far in one transaction, with one
multi-row statement per table. A lone worker waits for nothing (its batch is itself); under load a
batch holds whatever arrived while the previous one committed.

A duplicate (a retried webhook, a re-run worker) is not an error: a batch first looks up which of
its messages and conversations exist, and inserts only the others. (Dialect-specific ``ON CONFLICT
DO NOTHING`` inserts would save that look-up, but SQLAlchemy compiles them anew on every execution,
which cost more than the look-up; these statements all come from its compiled cache.) Two writers
racing to insert the same row make one transaction fail on the unique key, and a batch that fails
for any reason but an unreachable database is retried one write at a time: the retry's look-up
sees the other's row, and a row the database refuses fails only its own write.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from parley.core.envelope import Envelope, Reply
from parley.errors import Unavailable
from parley.stores.sql_tables import Conversation, Message

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
        self._database = database
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
                ticket.finish(error=_unavailable(exc))
        except Exception:
            for ticket in batch:
                self._commit_alone(ticket)
        else:
            for ticket, result in zip(batch, results, strict=True):
                ticket.finish(result)

    def _commit_alone(self, ticket: _Ticket) -> None:
        for attempt in range(2):
            try:
                ticket.finish(self._in_one_transaction([ticket.write])[0])
                return
            except OperationalError as exc:
                ticket.finish(error=_unavailable(exc))
                return
            except IntegrityError as exc:  # a concurrent writer's row: the second look-up sees it
                if attempt:
                    ticket.finish(error=exc)
            except Exception as exc:  # noqa: BLE001 - handed to the one caller whose row it is
                ticket.finish(error=exc)
                return

    def _in_one_transaction(self, writes: Sequence[Write]) -> list[bool]:
        inbound = [write.envelope for write in writes if isinstance(write, Inbound)]
        replies = [reply for write in writes if isinstance(write, Replies) for reply in write.replies]
        with self._database.begin() as connection:
            known = _existing(connection, [e.dedupe_key for e in inbound] + [r.reply_id for r in replies])
            stored = self._insert_inbound(connection, inbound, known) if inbound else set()
            if replies:
                self._insert_replies(connection, writes, known)
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

    def _insert_inbound(self, connection: Connection, envelopes: list[Envelope], known: set[str]) -> set[str]:
        now = _now()
        conversations = {envelope.conversation_id: {
            "id": envelope.conversation_id, "channel": envelope.channel, "customer": envelope.sender,
            "started_at": now, "updated_at": now} for envelope in reversed(envelopes)}
        found = set(connection.scalars(select(Conversation.id).where(Conversation.id.in_(conversations))))
        if new := [row for key, row in conversations.items() if key not in found]:
            connection.execute(insert(Conversation), new)
        rows = {envelope.dedupe_key: _message(
            public_id=envelope.dedupe_key, conversation_id=envelope.conversation_id, direction="in",
            channel=envelope.channel, text=envelope.text,
            created_at=datetime.fromtimestamp(envelope.timestamp, UTC))
            for envelope in reversed(envelopes) if envelope.dedupe_key not in known}
        if rows:
            connection.execute(insert(Message), list(reversed(rows.values())))
        return set(rows)

    def _insert_replies(self, connection: Connection, writes: Sequence[Write], known: set[str]) -> None:
        rows = [_reply(reply, in_reply_to=write.envelope.dedupe_key)
                for write in writes if isinstance(write, Replies)
                for reply in write.replies if reply.reply_id not in known]
        if rows:
            connection.execute(insert(Message), rows)
        conversations = {write.envelope.conversation_id for write in writes if isinstance(write, Replies)}
        connection.execute(update(Conversation).where(Conversation.id.in_(conversations))
                           .values(updated_at=_now()))


def _existing(connection: Connection, public_ids: list[str]) -> set[str]:
    return set(connection.scalars(select(Message.public_id).where(Message.public_id.in_(public_ids))))


def _unavailable(exc: OperationalError) -> Unavailable:
    return Unavailable(f"database unreachable: {exc.orig}")


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
