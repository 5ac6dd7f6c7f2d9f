"""Flood control for the webhook channels: per sender and per conversation, shared through Redis.

Slack, Twilio and Telegram cannot be told "429, wait": a refused webhook is retried by the platform,
so a flood would come back again and again. Instead every message is acknowledged, and one over the
limit is judged here before it reaches the inbox: the first one in a window becomes a ``throttled``
envelope that the dialogue answers with one polite notice (no LLM call; while a person has the
conversation it is relayed to them instead); the rest are dropped and logged. Dropped messages never
reach the inbox, so a flood cannot fill the workers' queues ahead of other customers. The widget
keeps its own limits, answered with 429 (a browser can be told to wait).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from parley.core.dialogue import THROTTLED
from parley.core.envelope import Envelope
from parley.core.inbox import Inbox
from parley.core.ratelimit import CountedPut, FloodCount, FloodGate, Verdict, Window

WINDOW_SECONDS = 60
# How long a message's id is remembered as judged: Slack retries over five minutes, Twilio within
# seconds, Telegram for a few minutes. A retry later than this is merely counted again.
RETRY_SECONDS = 15 * 60


@dataclass(frozen=True, slots=True)
class Admitted:
    """A message through flood control: the verdict, the envelope as stored (the ``throttled`` one
    after ``notify``), and whether it was stored (False for a duplicate, and for a drop)."""

    verdict: Verdict
    envelope: Envelope
    stored: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderLimits:
    """Messages a sender, and a conversation (a Slack thread may have many people), may send a minute."""

    gate: FloodGate
    per_sender: int
    per_conversation: int
    exempt_channels: frozenset[str] = frozenset({"widget"})
    # Where the windows and the inbox are one Redis, count and store in one round trip, not two.
    counted_put: CountedPut | None = None

    def admit(self, envelope: Envelope, inbox: Inbox) -> Admitted:
        """Judge the message (``judge``) and store what the verdict makes of it in ``inbox``."""
        count = self.count_of(envelope)
        if count is None:
            return Admitted("allow", envelope, inbox.put(envelope))
        notice = throttled(envelope)
        if self.counted_put is not None:
            verdict, stored = self.counted_put(envelope, notice, count)
            return Admitted(verdict, notice if verdict == "notify" else envelope, stored)
        verdict = self._count(count)
        if verdict == "drop":
            return Admitted(verdict, envelope, stored=False)
        kept = notice if verdict == "notify" else envelope
        return Admitted(verdict, kept, inbox.put(kept))

    def judge(self, envelope: Envelope) -> Verdict:
        """Count the message; over a limit, ``notify`` once a window and ``drop`` after that.

        A platform's retry of a message judged already (acknowledged too slowly, or refused with a
        503 before it was stored) is the same message: it is not counted again, and not throttled.
        Counted, a customer's own retries would use up their minute, or throttle the retry away.
        The inbox then stores it, or knows it for a duplicate.
        """
        count = self.count_of(envelope)
        return "allow" if count is None else self._count(count)

    def count_of(self, envelope: Envelope) -> FloodCount | None:
        """What counting this message takes; None for those never counted (reps, the widget)."""
        if envelope.role != "customer" or envelope.channel in self.exempt_channels:
            return None
        sender = f"{envelope.channel}:{envelope.sender}"
        windows = (Window(f"sender:{sender}", self.per_sender, WINDOW_SECONDS),
                   Window(f"conversation:{envelope.conversation_id}", self.per_conversation, WINDOW_SECONDS))
        return FloodCount(f"message:{envelope.dedupe_key}", windows, notice_key=f"notice:{sender}",
                          retry_seconds=RETRY_SECONDS)

    def _count(self, count: FloodCount) -> Verdict:
        return self.gate.count(count.message_key, count.windows, notice_key=count.notice_key,
                               retry_seconds=count.retry_seconds)


def throttled(envelope: Envelope) -> Envelope:
    """The message that gets the notice instead of an answer."""
    return replace(envelope, action=THROTTLED)
