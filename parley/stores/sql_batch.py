"""Group commit for the conversation log: many workers' writes, one transaction.

Every answered message is written twice (the customer's message before the dialogue runs, its
replies after), and each write must be durable before its worker goes on: the replies are logged
before they are sent, so that a retry replays them. A transaction per write makes the database's
round trips and commits the cost of a message. Here a worker queues its write, and the first
worker to find the writer free commits everything queued so far in one transaction, with one
multi-row statement per table. A lone worker waits for nothing (its batch is itself); under load a
batch holds whatever arrived while the previous one committed.

Duplicates are rare here (the inbox dedupes before a message is queued), so a batch is written
optimistically, without reading first: a few round trips a message, all statements from
SQLAlchemy's compiled cache. (Dialect-specific ``ON CONFLICT DO NOTHING`` inserts are never
cached: compiling them cost more than they saved.) A batch that fails for any reason but an
unreachable database is retried one write at a time, each first looking up which of its rows exist:
a duplicate (a retried webhook, a re-run worker, another pod's racing insert) is then skipped, and a
row the database refuses fails only its own write.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from parley.core.envelope import Attachment, Envelope, Reply
from parley.core.relay import Event
from parley.errors import Unavailable
from parley.stores.sql_tables import Conversation, Feedback, HandoffEvent, Message

# Bounds one transaction (and its statements' size) when a backlog has built up.
BATCH_LIMIT = 256
CONVERSATIONS_REMEMBERED = 50_000


@dataclass(frozen=True, slots=True)
class Inbound:
    """A customer's message; its result says whether it was stored now (False: stored before)."""

    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Replies:
    """The replies to a message, in order, with the handoff steps it made and a rating it gave;
    its result says whether they were stored now (False: replies to it were stored before)."""

    envelope: Envelope
    replies: tuple[Reply, ...]
    events: tuple[Event, ...] = ()
    rated: tuple[str, int] | None = None  # the rating prompt's reply id, and the customer's 1-5


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
        # Conversations known to exist, so a message to one needs no look-up. Only ever a hint: a
        # conversation erased meanwhile fails the insert on its foreign key, and the retry alone
        # looks everything up.
        self._conversations = _Recent(CONVERSATIONS_REMEMBERED)

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
            results = self._in_one_transaction([ticket.write for ticket in batch], look_up=False)
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
                ticket.finish(self._in_one_transaction([ticket.write], look_up=True)[0])
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

    def _in_one_transaction(self, writes: Sequence[Write], *, look_up: bool) -> list[bool]:
        """Commit the writes; ``look_up`` first reads which rows exist (else a duplicate raises)."""
        inbound = [write.envelope for write in writes if isinstance(write, Inbound)]
        replies = [write for write in writes if isinstance(write, Replies)]
        with self._database.begin() as connection:
            known = _existing(connection, [e.dedupe_key for e in inbound]
                              + [r.reply_id for write in replies for r in write.replies]) if look_up else set()
            stored = self._insert_inbound(connection, inbound, known, look_up=look_up) if inbound else set()
            if replies:
                self._insert_replies(connection, replies, known)
        self._conversations.update(envelope.conversation_id for envelope in inbound)
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
                results.append(not any(reply.reply_id in known for reply in write.replies))
        return results

    def _insert_inbound(self, connection: Connection, envelopes: list[Envelope], known: set[str], *,
                        look_up: bool) -> set[str]:
        now = _now()
        conversations = {envelope.conversation_id: {
            "id": envelope.conversation_id, "channel": envelope.channel, "customer": envelope.sender,
            "started_at": now, "updated_at": now} for envelope in reversed(envelopes)}
        unsure = [key for key in conversations if look_up or key not in self._conversations]
        if unsure:
            found = set(connection.scalars(select(Conversation.id).where(Conversation.id.in_(unsure))))
            if new := [conversations[key] for key in unsure if key not in found]:
                connection.execute(insert(Conversation), new)
        rows = {envelope.dedupe_key: _message(
            public_id=envelope.dedupe_key, conversation_id=envelope.conversation_id, direction="in",
            channel=envelope.channel, text=envelope.text, files=files_json(envelope.attachments, refs=False),
            created_at=datetime.fromtimestamp(envelope.timestamp, UTC))
            for envelope in reversed(envelopes) if envelope.dedupe_key not in known}
        if rows:
            connection.execute(insert(Message), list(reversed(rows.values())))
        return set(rows)

    def _insert_replies(self, connection: Connection, writes: list[Replies], known: set[str]) -> None:
        # A message whose replies are stored already had its steps and rating stored with them.
        fresh = [write for write in writes if not any(reply.reply_id in known for reply in write.replies)]
        now = _now()
        if rows := [_reply(reply, in_reply_to=write.envelope.dedupe_key) for write in fresh for reply in write.replies]:
            connection.execute(insert(Message), rows)
        if steps := [{"conversation_id": write.envelope.conversation_id, "kind": event.kind, "reason": event.reason,
                      "actor": event.actor, "created_at": now} for write in fresh for event in write.events]:
            connection.execute(insert(HandoffEvent), steps)
        if ratings := {write.rated[0]: (write.envelope.conversation_id, write.rated[1])
                       for write in fresh if write.rated is not None}:
            _rate(connection, ratings, now)
        conversations = {write.envelope.conversation_id for write in writes}
        connection.execute(update(Conversation).where(Conversation.id.in_(conversations)).values(updated_at=now))


def _rate(connection: Connection, ratings: dict[str, tuple[str, int]], now: datetime) -> None:
    """A handoff's 1-5 rating, as the verdict on the message that asked for it (a new score replaces one)."""
    rated = set(connection.scalars(select(Feedback.message_id).where(Feedback.message_id.in_(ratings))))
    for message_id in rated:
        connection.execute(update(Feedback).where(Feedback.message_id == message_id)
                           .values(score=ratings[message_id][1], kind="handoff", comment=None, created_at=now))
    if new := [{"message_id": message_id, "conversation_id": conversation_id, "kind": "handoff", "score": score,
                "comment": None, "created_at": now}
               for message_id, (conversation_id, score) in ratings.items() if message_id not in rated]:
        connection.execute(insert(Feedback), new)


def _existing(connection: Connection, public_ids: list[str]) -> set[str]:
    return set(connection.scalars(select(Message.public_id).where(Message.public_id.in_(public_ids))))


def _unavailable(exc: OperationalError) -> Unavailable:
    return Unavailable(f"database unreachable: {exc.orig}")


class _Recent:
    """The newest ``size`` keys added (a bounded set, oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, key: str) -> bool:
        return key in self._keys

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._keys[key] = None
            self._keys.move_to_end(key)
        while len(self._keys) > self._size:
            self._keys.popitem(last=False)


def _now() -> datetime:
    return datetime.now(UTC)


def _message(**values: Any) -> dict[str, Any]:
    # A multi-row INSERT needs every row to name the same columns.
    return {"in_reply_to": None, "author": None, "engine": None, "intent": None, "confidence": None,
            "sources": "[]", "quick_replies": "[]", "latency_ms": None, "cached": False,
            "model_version": None, "model": None, "prompt_tokens": None, "completion_tokens": None,
            "route": None, "desk": None, "language": None, "files": None, **values}


def _reply(reply: Reply, *, in_reply_to: str) -> dict[str, Any]:
    meta = reply.meta
    return _message(
        public_id=reply.reply_id, conversation_id=reply.conversation_id, direction="out",
        channel=reply.channel, text=reply.text, created_at=_now(), in_reply_to=in_reply_to,
        author=reply.author, engine=meta.engine, intent=meta.intent, confidence=meta.confidence,
        sources=json.dumps([s.to_dict() for s in meta.sources]),
        quick_replies=json.dumps(list(reply.quick_replies)), latency_ms=meta.latency_ms,
        cached=meta.cached, model_version=meta.model_version, model=meta.model,
        prompt_tokens=meta.prompt_tokens, completion_tokens=meta.completion_tokens,
        route=json.dumps(dict(reply.route)),
        desk=json.dumps(asdict(reply.desk)) if reply.desk is not None else None,
        language=reply.language, files=files_json(reply.files),
    )


def files_json(files: Sequence[Attachment], *, refs: bool = True) -> str | None:
    """Files as the log keeps them; a customer's without their platform handles (``refs=False``)."""
    if not files:
        return None
    return json.dumps([{**asdict(file), **({} if refs else {"origin": "", "ref": ""})} for file in files])
