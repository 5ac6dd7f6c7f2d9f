"""The conversation log's tables (SQLModel): every message in and out, handoff steps, feedback, labels
and trained models. The Alembic migrations under ``parley/migrations/`` create and upgrade them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Index
from sqlmodel import Field, SQLModel


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
    # LLM accounting (null for messages no model wrote): which model, and the tokens it billed.
    model: str | None = Field(default=None, max_length=200)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Where a reply went (JSON), so a retry resends it there: a post to the reps' thread has its
    # own route, not the customer's. Null on inbound messages and on replies logged before 0004.
    route: str | None = None
    # What a post to the reps' thread is (``core.desk.DeskPost`` as JSON); null on every other message.
    desk: str | None = None
    # The conversation's language on a customer's reply (``Reply.language``); null: the default.
    language: str | None = Field(default=None, max_length=16)
    # Files (JSON list of ``core.envelope.Attachment``): a customer's as they described them, a
    # reply's with where to fetch each (a retry sends the same). Null: no files.
    files: str | None = None

    # Export filters by channel and time; the suggest query walks inbound messages by time.
    __table_args__ = (Index("ix_message_channel_created_at", "channel", "created_at"),)


class HandoffEvent(SQLModel, table=True):
    """One step of a handoff (requested, claimed, handed back, resolved), for funnel analysis."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=200)
    kind: str = Field(max_length=32)
    reason: str | None = None
    actor: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=_now, index=True)


class Feedback(SQLModel, table=True):
    """A customer's verdict on one bot message: thumbs (-1/+1), a handoff rating (1-5) or helpful."""

    id: int | None = Field(default=None, primary_key=True)
    # One verdict per message: a second click changes it rather than adding a vote.
    message_id: str = Field(foreign_key="message.public_id", unique=True, max_length=200)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=200)
    kind: str = Field(default="answer", max_length=16)
    score: int
    comment: str | None = None
    created_at: datetime = Field(default_factory=_now, index=True)


class Label(SQLModel, table=True):
    """The intent (knowledge article id, or ``handoff``) a person assigned to a customer message."""

    message_id: str = Field(primary_key=True, foreign_key="message.public_id", max_length=200)
    intent: str = Field(index=True, max_length=200)
    source: str = Field(default="import", max_length=32)
    created_at: datetime = Field(default_factory=_now)


class ModelVersion(SQLModel, table=True):
    """A trained classifier artefact under ``<data_dir>/models``; at most one is active."""

    version: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32)
    artefact: str = Field(max_length=200)
    content_hash: str = Field(max_length=64)
    metrics: str = "{}"
    params: str = "{}"
    data_from: datetime | None = None
    data_until: datetime | None = None
    created_at: datetime = Field(default_factory=_now)
    active: bool = Field(default=False, index=True)
    activated_at: datetime | None = None


class Erasure(SQLModel, table=True):
    """A tombstone of one erased conversation (``parley forget``), holding no personal data.

    ``subject`` is a digest of the conversation id, so export can refuse to write anything of that
    conversation ever again (a message in flight at the erasure, logged after it, or the customer
    writing again); ``pseudonym`` is the conversation's pseudonym in redacted exports (with
    ``data.pseudonym_key``), so whoever holds an earlier export file can find and drop its rows.
    """

    subject: str = Field(primary_key=True, max_length=64)
    pseudonym: str | None = Field(default=None, max_length=64)
    request: str = Field(index=True, max_length=32)
    messages: int = 0
    created_at: datetime = Field(default_factory=_now)


class PeriodicRun(SQLModel, table=True):
    """Which slot of a cluster-wide periodic job ran: the first process to insert a slot runs it."""

    job: str = Field(primary_key=True, max_length=64)
    # The job's interval number since the epoch (time // interval): a BIGINT, as short intervals count high.
    slot: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    created_at: datetime = Field(default_factory=_now)
