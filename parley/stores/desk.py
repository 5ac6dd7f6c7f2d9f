"""Which reps' thread belongs to which conversation, in SQL so every process agrees.

A handoff opens one thread in the reps' Slack channel; a rep's reply arrives with only the thread's
``ts``, so ``conversation_of`` turns it back into the customer's conversation. The queries that
read the handoff log for the desk (open requests for reminders, a rep's current conversation for
``/parley label``) live here too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import Engine, UniqueConstraint, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Field, Session, SQLModel

from parley.core.desk import DeskAnswer, DeskRequest, OpenRequest, ThreadState, Waiting
from parley.core.handoff import DESK
from parley.stores.sql import Conversation, HandoffEvent, Label, Message, commit_unless_duplicate

# Events after which a request is no longer waiting for a person.
_SETTLED = ("claimed", "first_reply", "handed_back", "resolved")
# What each step leaves a handoff in, for its thread's header.
_STATES = {"requested": "waiting", "claimed": "claimed", "first_reply": "claimed",
           "handed_back": "bot", "resolved": "resolved"}
# Replies that are not the answer engine's: greetings, handoff notices, a person's words.
_NOT_ANSWERS = ("dialogue", "handoff", "person", "throttle")


def _now() -> datetime:
    return datetime.now(UTC)


class DeskThread(SQLModel, table=True):
    """One handoff's thread in the reps' channel (``handoff`` counts a conversation's handoffs)."""

    thread_ts: str = Field(primary_key=True, max_length=32)
    desk_channel: str = Field(max_length=32)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=200)
    handoff: int
    rep_user: str | None = Field(default=None, index=True, max_length=32)
    created_at: datetime = Field(default_factory=_now)
    updated_at: datetime = Field(default_factory=_now, index=True)

    __table_args__ = (UniqueConstraint("conversation_id", "handoff", name="uq_deskthread_handoff"),)


class DeskHomeViewer(SQLModel, table=True):
    """A rep who opened the App Home tab, and when last: the tab is republished for them on changes."""

    rep_user: str = Field(primary_key=True, max_length=32)
    opened_at: datetime = Field(default_factory=_now, index=True)


class SqlDeskDirectory:
    """``core.desk.DeskDirectory`` in the conversation log's database."""

    def __init__(self, database: Engine) -> None:
        self.database = database

    def remember(self, *, conversation_id: str, handoff: int, desk_channel: str, thread_ts: str) -> bool:
        """Record a new thread; False when this handoff already has one (a retried post)."""
        with Session(self.database) as session:
            session.add(DeskThread(thread_ts=thread_ts, desk_channel=desk_channel,
                                   conversation_id=conversation_id, handoff=handoff))
            return commit_unless_duplicate(session)

    def thread_of(self, conversation_id: str, handoff: int | None = None) -> str | None:
        """The thread of that handoff, or of the conversation's latest one."""
        query = select(DeskThread.thread_ts).where(DeskThread.conversation_id == conversation_id)
        if handoff is not None:
            query = query.where(DeskThread.handoff == handoff)
        with Session(self.database) as session:
            return session.scalars(query.order_by(DeskThread.handoff.desc())).first()

    def conversation_of(self, desk_channel: str, thread_ts: str) -> str | None:
        with Session(self.database) as session:
            row = session.get(DeskThread, thread_ts)
        return row.conversation_id if row is not None and row.desk_channel == desk_channel else None

    def touch(self, thread_ts: str, rep_user: str) -> None:
        """Note the rep who last acted in a thread (``/parley label`` labels their conversation)."""
        with Session(self.database) as session:
            row = session.get(DeskThread, thread_ts)
            if row is not None:
                row.rep_user, row.updated_at = rep_user, _now()
                session.add(row)
                session.commit()

    def current_conversation(self, rep_user: str) -> str | None:
        query = (select(DeskThread.conversation_id).where(DeskThread.rep_user == rep_user)
                 .order_by(DeskThread.updated_at.desc()))
        with Session(self.database) as session:
            return session.scalars(query).first()

    def open_requests(self, since: float) -> list[OpenRequest]:
        """Conversations whose latest handoff request, made after ``since``, no person has taken yet."""
        latest = (select(HandoffEvent.conversation_id, func.max(HandoffEvent.id).label("last"))
                  .where(HandoffEvent.kind.in_(("requested", *_SETTLED)),
                         HandoffEvent.created_at >= datetime.fromtimestamp(since, UTC))
                  .group_by(HandoffEvent.conversation_id).subquery())
        query = (select(HandoffEvent)
                 .join(latest, HandoffEvent.id == latest.c.last)
                 .where(HandoffEvent.kind == "requested"))
        with Session(self.database) as session:
            rows = session.scalars(query).all()
        return [OpenRequest(conversation_id=row.conversation_id,
                            requested_at=_utc(row.created_at).timestamp()) for row in rows]

    def label_last_answer(self, conversation_id: str, article: str, *, source: str = "slack") -> str | None:
        """Label the customer message behind the bot's latest engine answer (not a greeting or a
        handoff notice); its id, or None if there is none."""
        query = (select(Message.public_id).where(*_answers_of(conversation_id)).order_by(Message.id.desc()))
        with Session(self.database) as session:
            answer_id = session.scalars(query).first()
        return None if answer_id is None else self.label_answer(conversation_id, answer_id, article,
                                                                source=source)

    def label_answer(self, conversation_id: str, answer_id: str, article: str, *,
                     source: str = "slack") -> str | None:
        """Label the customer message that one answer replied to; its id, or None when the answer
        is not the bot's in that conversation (a forged or stale button)."""
        query = select(Message.in_reply_to).where(Message.public_id == answer_id,
                                                  *_answers_of(conversation_id))
        with Session(self.database) as session:
            message_id = session.scalars(query).first()
            inbound = session.scalars(select(Message).where(Message.public_id == message_id,
                                                            Message.direction == "in")).first()
            if inbound is None:
                return None
            label = (session.get(Label, inbound.public_id)
                     or Label(message_id=inbound.public_id, intent=article))
            label.intent, label.source, label.created_at = article, source, _now()
            session.add(label)
            session.commit()
            return inbound.public_id

    def answers(self, conversation_id: str, limit: int) -> list[DeskAnswer]:
        """The bot's latest engine answers in the conversation, oldest first, with their questions."""
        question = aliased(Message)
        query = (select(Message.public_id, question.text, Message.text)
                 .join(question, (question.public_id == Message.in_reply_to) & (question.direction == "in"))
                 .where(*_answers_of(conversation_id)).order_by(Message.id.desc()).limit(limit))
        with Session(self.database) as session:
            rows = session.execute(query).all()
        return [DeskAnswer(answer_id=row[0], question=row[1], text=row[2]) for row in reversed(rows)]

    def header_of(self, conversation_id: str, handoff: int) -> str | None:
        """The header posted for that handoff: the desk's ``open`` post in the conversation log."""
        query = (select(Message.text, Message.desk)
                 .where(Message.conversation_id == conversation_id, Message.channel == DESK,
                        Message.direction == "out", Message.desk.is_not(None))
                 .order_by(Message.id.desc()))
        with Session(self.database) as session:
            for text, desk in session.execute(query):
                post = json.loads(desk)
                if post.get("kind") == "open" and post.get("handoff") == handoff:
                    return text
        return None

    def thread_state(self, conversation_id: str) -> ThreadState:
        """The latest handoff's state from its steps in the log (claimed, handed back, resolved)."""
        query = (select(HandoffEvent).where(HandoffEvent.conversation_id == conversation_id)
                 .order_by(HandoffEvent.id.desc()).limit(50))
        with Session(self.database) as session:
            rows = session.scalars(query).all()
        state = ThreadState()
        for row in reversed(rows):  # oldest first: each step overrides the one before
            if row.kind == "requested":
                state = ThreadState(requested_at=_utc(row.created_at).timestamp())
            elif row.kind in _STATES and not (row.kind == "first_reply" and state.state == "claimed"):
                state = ThreadState(state=_STATES[row.kind], actor=row.actor,  # type: ignore[arg-type]
                                    requested_at=state.requested_at)
            elif row.kind == "rating" and (row.reason or "").isdigit():
                state = ThreadState(state=state.state, actor=state.actor, rating=int(row.reason or 0),
                                    requested_at=state.requested_at)
        return state

    def waiting(self, limit: int) -> Waiting:
        """Requests nobody has taken (of the last 30 days), oldest first, with who and why."""
        since = datetime.now(UTC).timestamp() - 30 * 24 * 3600
        every = self.open_requests(since)
        opened = sorted(every, key=lambda item: item.requested_at)[:limit]
        ids = [item.conversation_id for item in opened]
        with Session(self.database) as session:
            conversations = {row.id: row for row in session.scalars(
                select(Conversation).where(Conversation.id.in_(ids)))}
            reasons = dict(session.execute(
                select(HandoffEvent.conversation_id, HandoffEvent.reason)
                .where(HandoffEvent.conversation_id.in_(ids), HandoffEvent.kind == "requested")
                .order_by(HandoffEvent.id)).all())
        first = tuple(DeskRequest(conversation_id=item.conversation_id, requested_at=item.requested_at,
                                  channel=getattr(conversations.get(item.conversation_id), "channel", "?"),
                                  customer=getattr(conversations.get(item.conversation_id), "customer", ""),
                                  reason=reasons.get(item.conversation_id) or "requested")
                      for item in opened)
        return Waiting(first=first, total=len(every))

    def home_opened(self, rep_user: str) -> None:
        rep_user, now = rep_user[:32], _now()
        seen = update(DeskHomeViewer).where(DeskHomeViewer.rep_user == rep_user).values(opened_at=now)
        with Session(self.database) as session:
            if session.execute(seen).rowcount:
                session.commit()
                return
            session.add(DeskHomeViewer(rep_user=rep_user, opened_at=now))
            if not commit_unless_duplicate(session):  # another pod noted them first: ours is as good
                session.execute(seen)
                session.commit()

    def home_viewers(self, since: float, limit: int) -> list[str]:
        query = (select(DeskHomeViewer.rep_user)
                 .where(DeskHomeViewer.opened_at >= datetime.fromtimestamp(since, UTC))
                 .order_by(DeskHomeViewer.opened_at.desc()).limit(limit))
        with Session(self.database) as session:
            return list(session.scalars(query))


def _answers_of(conversation_id: str) -> tuple:  # noqa: ANN401 - SQL expressions
    """The conditions that make a logged message one of the bot's engine answers in a conversation."""
    return (Message.conversation_id == conversation_id, Message.direction == "out", Message.channel != DESK,
            Message.author.is_(None), Message.in_reply_to.is_not(None), Message.engine.not_in(_NOT_ANSWERS))

def _utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
