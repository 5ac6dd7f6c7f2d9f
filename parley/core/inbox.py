"""The ``Inbox``: durable, deduplicated, ordered per conversation, with no head-of-line blocking.

A webhook ``put``s an envelope and acknowledges the platform only once ``put`` returned. Each
conversation has its own queue. A conversation with work waiting is *ready*; a worker ``claim``s
ready conversations and, while it holds a claim, takes that conversation's messages one at a time,
oldest first (``next``). So one conversation's messages are answered in order, by one worker at a
time, while every other conversation is free for any other worker: a slow answer delays only the
conversation it belongs to, and capacity is the number of workers, however many processes run.

A claim ends by itself when ``next`` finds the queue empty (a later ``put`` makes the conversation
ready again), or is handed back with ``release`` (shutdown). A worker that dies keeps its claims
only until the inbox's visibility timeout: then another worker claims the conversation and retries
the message at its head (``attempt`` counts every take).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parley.core.envelope import Envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One conversation, held by one worker until its queue is empty or it is released."""

    conversation_id: str
    token: str  # the inbox's own handle for this claim (a Redis stream entry id, a counter)


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """The message at the head of a claimed conversation; ``done`` or ``fail`` it exactly once."""

    envelope: Envelope
    claim: Claim
    entry_id: str
    attempt: int = 1


class Inbox(Protocol):
    def put(self, envelope: Envelope) -> bool:
        """Store durably; False when this platform message was already stored (a retry)."""
        ...

    def claim(self, limit: int, timeout: float) -> list[Claim]:
        """Up to ``limit`` ready conversations, waiting up to ``timeout`` seconds for one."""
        ...

    def next(self, claim: Claim) -> Delivery | None:
        """The claimed conversation's oldest message; None (and the claim ends) when none is left.

        Raises ``LostClaim`` when the claim lapsed and another worker holds the conversation now.
        """
        ...

    def done(self, delivery: Delivery) -> None: ...

    def fail(self, delivery: Delivery, reason: str) -> bool:
        """Keep the message at the head for another attempt (False), or dead-letter it after too
        many (True: the conversation goes on with its next message)."""
        ...

    def release(self, claim: Claim) -> None:
        """Hand a claim back unfinished (shutdown): another worker may claim it at once."""
        ...

    def close(self) -> None:
        """Wake every waiting ``claim``; later claims return nothing. Stored envelopes stay stored."""
        ...
