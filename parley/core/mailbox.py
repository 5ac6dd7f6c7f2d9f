"""The ``Mailbox``: where replies for web clients wait to be picked up, shared by every process.

The widget adapter publishes to it and the browser's request (or event stream) reads from it; the
stores implement it in this process or on Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from parley.core.envelope import Reply

EventKind = Literal["replies", "token", "typing"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxEvent:
    """Something a browser should see: a batch of replies, a streamed token, or "typing"."""

    cursor: str
    kind: EventKind
    replies: tuple[Reply, ...] = ()
    reply_id: str | None = None
    text: str = ""


class Mailbox(Protocol):
    def publish(self, conversation_id: str, replies: Sequence[Reply]) -> None: ...

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's recent events (GDPR erasure)."""
        ...

    def publish_token(self, conversation_id: str, reply_id: str, text: str) -> None: ...

    def publish_typing(self, conversation_id: str) -> None: ...

    def wait_for(self, conversation_id: str, in_reply_to: str, timeout: float) -> list[Reply] | None:
        """The replies to one message, waiting up to ``timeout``; None when they did not come."""
        ...

    def after(self, conversation_id: str, cursor: str, timeout: float) -> list[MailboxEvent]:
        """Events newer than ``cursor`` ("0" for everything kept), waiting up to ``timeout``."""
        ...

    def close(self) -> None:
        """End every wait now and return at once from later ones (shutdown)."""
        ...
