"""The ``ConversationLog``: every message in and out, kept in SQL for people and data scientists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from parley.core.envelope import Attachment, Envelope, Reply, Source
from parley.core.relay import Event


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedMessage:
    id: str
    direction: Literal["in", "out"]
    text: str
    created_at: float
    sources: tuple[Source, ...] = ()
    author: str | None = None
    quick_replies: tuple[str, ...] = ()
    files: tuple[Attachment, ...] = ()


class ConversationLog(Protocol):
    def record_inbound(self, envelope: Envelope) -> bool:
        """Store a customer message; False when it was stored before (the SQL unique key)."""
        ...

    def record_replies(self, envelope: Envelope, replies: Sequence[Reply], *, events: Sequence[Event] = (),
                       rated: tuple[str, int] | None = None) -> bool:
        """Store a message's replies, with the handoff steps it made (``events``) and the customer's
        1-5 rating of a handoff (``rated``: the prompt's reply id and the score), all or nothing.

        False when replies to the message were stored before (by an earlier run, or by another
        worker that took over a lapsed claim): those are kept, with their steps and rating, and
        are the ones to send (``replies_to``).
        """
        ...

    def replies_to(self, envelope: Envelope) -> list[Reply] | None:
        """The replies already recorded for a message, or None when it was never answered."""
        ...

    def has_conversation(self, conversation_id: str, channel: str) -> bool:
        """Whether the conversation exists on that channel (one key look-up, no messages read)."""
        ...

    def transcript(self, conversation_id: str, channel: str) -> list[LoggedMessage] | None:
        """The conversation in order, or None when it does not exist."""
        ...

    def record_feedback(self, *, conversation_id: str, channel: str, message_id: str, score: int,
                        comment: str | None = None, kind: str = "answer") -> bool:
        """Store or change the customer's verdict on a bot message (thumbs -1/+1, a 1-5 handoff
        rating, or "was this helpful?"); False when ``message_id`` is not a bot message of that
        conversation on that channel."""
        ...

    def record_handoff_event(self, *, conversation_id: str, kind: str, reason: str | None = None,
                             actor: str | None = None) -> None:
        """Log one step of a handoff (requested, claimed, handed_back, resolved)."""
        ...

    def ping(self) -> None:
        """Raise ``Unavailable`` when the database cannot be reached."""
        ...
