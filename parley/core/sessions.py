"""Conversation state and the ``SessionStore`` interface that keeps it between messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

Role = Literal["customer", "bot", "agent"]
# bot: the bot answers. waiting: handed off, no rep yet. claimed: a rep owns it.
# resolved ends a handoff like ``bot`` does, but remembers that a person closed it.
HandoffState = Literal["bot", "waiting", "claimed", "resolved"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    role: Role
    text: str
    at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    conversation_id: str
    channel: str
    route: Mapping[str, str] = field(default_factory=dict)
    history: tuple[Turn, ...] = ()
    handoff: HandoffState = "bot"
    handoff_reason: str | None = None
    handoff_requested_at: float | None = None
    low_confidence_streak: int = 0
    # Handoff bookkeeping (parley.core.handoff): the customer's id for the reps' header, which
    # handoff this is (one desk thread each), who claimed it, and what is still owed to whom.
    customer: str = ""
    handoffs: int = 0
    claimed_by: str | None = None
    first_rep_reply_at: float | None = None
    reminders_sent: int = 0
    engine_failures: int = 0
    rating_prompt: str | None = None  # the reply id that asked for a 1-5 rating, until answered
    offered: tuple[str, ...] = ()  # the quick replies of the bot's last answer ("2" picks one)
    language: str | None = None  # the language the bot speaks in it (``parley.core.texts.Texts.choose``)
    created_at: float = 0.0
    updated_at: float = 0.0
    # The message (its dedupe key) whose effects this state holds, and the state before it. The
    # worker saves the state before it logs the replies; should the log then fail, the retry finds
    # its own message applied here, and decides again from ``before`` (``Dialogue.decide``).
    applied: str | None = None
    before: Session | None = None
    # Who may overwrite it: (the inbox entry of the message applied, the take of it that did). Both
    # only grow along a conversation, so a worker whose claim lapsed while it was paused (and was
    # taken over) holds a smaller fence than what the new holder saved, and its save is refused.
    fence: tuple[int, int] | None = None

    @property
    def is_handed_off(self) -> bool:
        return self.handoff in ("waiting", "claimed")

    def with_turns(self, turns: tuple[Turn, ...], *, max_turns: int, max_chars: int) -> Session:
        """Append turns, then drop the oldest until the history fits both bounds."""
        history = (*self.history, *turns)[-max_turns:]
        while len(history) > 1 and sum(len(turn.text) for turn in history) > max_chars:
            history = history[1:]
        updated = max((turn.at for turn in turns), default=self.updated_at)
        return replace(self, history=history, updated_at=updated)


class SessionStore(Protocol):
    """Loads and saves sessions; implementations expire them after a TTL of inactivity."""

    def load(self, conversation_id: str) -> Session | None: ...

    def save(self, session: Session) -> None:
        """Keep ``session``; ``LostClaim`` (saving nothing) when the stored one has a greater ``fence``."""
        ...

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's state at once (GDPR erasure)."""
        ...


def supersedes(stored: Session | None, new: Session) -> bool:
    """Whether the stored state was saved by a later holder than the one saving ``new``."""
    return (stored is not None and stored.fence is not None and new.fence is not None
            and tuple(stored.fence) > tuple(new.fence))
