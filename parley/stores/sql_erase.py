"""Deleting conversations from the log, for ``parley forget`` and ``data.retention_days``.

A conversation's rows hang off it by foreign key (messages, their feedback and labels, handoff
steps, desk threads), so they go children first, in one transaction per chunk of conversations:
an erasure is never half done, and a large retention sweep never holds one huge lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, func, or_, select

from parley.stores.desk import DeskThread
from parley.stores.sql_tables import Conversation, Erasure, Feedback, HandoffEvent, Label, Message, _now

CHUNK = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Deleted:
    conversations: int = 0
    messages: int = 0

    def __add__(self, other: Deleted) -> Deleted:
        return Deleted(conversations=self.conversations + other.conversations,
                       messages=self.messages + other.messages)


def subject_of(conversation_id: str) -> str:
    """The tombstone's key: a digest, so the erasure list itself holds no conversation id."""
    return hashlib.sha256(conversation_id.encode("utf-8")).hexdigest()


def conversations_of(database: Engine, customer: str) -> list[str]:
    """The conversations of a customer, named by their id on the channel (a phone number, a Slack or
    Telegram user id) or by a conversation id (a widget visitor has no other)."""
    query = select(Conversation.id).where(or_(Conversation.customer == customer, Conversation.id == customer))
    with database.connect() as connection:
        return list(connection.scalars(query))


def idle_conversations(connection: Connection, before: datetime, limit: int) -> list[str]:
    """Conversations whose last message (or their start, if none) is older than ``before``."""
    last = (select(Message.conversation_id, func.max(Message.created_at).label("last"))
            .group_by(Message.conversation_id).subquery())
    query = (select(Conversation.id).outerjoin(last, last.c.conversation_id == Conversation.id)
             .where(func.coalesce(last.c.last, Conversation.started_at) < before).limit(limit))
    return list(connection.scalars(query))


def delete_conversations(connection: Connection, ids: Sequence[str]) -> Deleted:
    """Delete the conversations ``ids`` and everything logged of them, in ``connection``'s transaction."""
    if not ids:
        return Deleted()
    messages = select(Message.public_id).where(Message.conversation_id.in_(ids))
    connection.execute(delete(Label).where(Label.message_id.in_(messages)))
    connection.execute(delete(Feedback).where(or_(Feedback.conversation_id.in_(ids),
                                                  Feedback.message_id.in_(messages))))
    connection.execute(delete(HandoffEvent).where(HandoffEvent.conversation_id.in_(ids)))
    connection.execute(delete(DeskThread).where(DeskThread.conversation_id.in_(ids)))
    gone = connection.execute(delete(Message).where(Message.conversation_id.in_(ids))).rowcount
    done = connection.execute(delete(Conversation).where(Conversation.id.in_(ids))).rowcount
    return Deleted(conversations=done, messages=gone)


def erase(database: Engine, ids: Sequence[str], *, request: str,
          pseudonym: Callable[[str], str] | None = None) -> Deleted:
    """Delete ``ids`` and leave a tombstone for each (``pseudonym`` gives its export pseudonym)."""
    total = Deleted()
    for chunk in _chunks(ids):
        with database.begin() as connection:
            counts = dict(connection.execute(  # type: ignore[arg-type]
                select(Message.conversation_id, func.count()).where(Message.conversation_id.in_(chunk))
                .group_by(Message.conversation_id)).all())
            deleted = delete_conversations(connection, chunk)
            subjects = [subject_of(conversation_id) for conversation_id in chunk]
            connection.execute(delete(Erasure).where(Erasure.subject.in_(subjects)))
            connection.execute(Erasure.__table__.insert(), [  # type: ignore[attr-defined]
                {"subject": subject, "request": request, "messages": counts.get(conversation_id, 0), "created_at": _now(),
                 "pseudonym": pseudonym(conversation_id) if pseudonym else None}
                for subject, conversation_id in zip(subjects, chunk, strict=True)])
        total += deleted
    return total


def erased_subjects(database: Engine) -> frozenset[str]:
    """Every tombstone, for export to skip (a set of digests: small beside the log)."""
    with database.connect() as connection:
        return frozenset(connection.scalars(select(Erasure.subject)))


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]
