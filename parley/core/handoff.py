"""Handing a conversation to a person: the state machine and the rules that trigger it. Pure.

A conversation is in one of four states (``Session.handoff``)::

    bot --request--> waiting --claim--> claimed --hand_back--> bot
                        |                  |
                        +----resolve-------+--> resolved --request--> waiting ...

While ``waiting`` or ``claimed`` the bot never answers: the dialogue relays the customer's messages
to the desk (the reps' channel) instead. Every function here decides; none does IO.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from parley.core import phrases
from parley.core.desk_texts import DESK_TEXTS, DeskTexts
from parley.core.markdown import escape, quoted, spelled_links
from parley.core.sessions import HandoffState, Turn

Transition = Literal["request", "claim", "hand_back", "resolve"]

# The replies addressed to the reps' channel carry this as ``Reply.channel``; the outbox routes them
# to the desk adapter (Slack) like any other channel.
DESK = "desk"

TRANSITIONS: Mapping[tuple[HandoffState, Transition], HandoffState] = {
    ("bot", "request"): "waiting",
    ("resolved", "request"): "waiting",
    ("waiting", "claim"): "claimed",
    ("waiting", "hand_back"): "bot",
    ("claimed", "hand_back"): "bot",
    ("waiting", "resolve"): "resolved",
    ("claimed", "resolve"): "resolved",
}

# Reminders stop after this many: past it, more messages would only nag.
MAX_REMINDERS = 3

EVENT_KINDS = ("requested", "claimed", "first_reply", "handed_back", "resolved", "rating", "reminded")


class InvalidTransition(ValueError):
    """A rep action that does not apply to the conversation's state (e.g. resolving it twice)."""

    def __init__(self, state: HandoffState, action: Transition) -> None:
        super().__init__(f"cannot {action.replace('_', ' ')} a conversation that is {state}")
        self.state = state
        self.action = action


def transition(state: HandoffState, action: Transition) -> HandoffState:
    """The state after ``action``, or ``InvalidTransition`` naming what was attempted."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(state, action) from None


class HandoffEvents(Protocol):
    """Where handoff steps are logged with their time (the SQL conversation log satisfies it)."""

    def record_handoff_event(self, *, conversation_id: str, kind: str, reason: str | None = None,
                             actor: str | None = None) -> None: ...

    def record_feedback(self, *, conversation_id: str, channel: str, message_id: str, score: int,
                        comment: str | None = None, kind: str = "answer") -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessHours:
    """When people answer: weekdays (0 = Monday) between ``opens`` and ``closes`` in ``timezone``."""

    timezone: str = "UTC"
    days: tuple[int, ...] = (0, 1, 2, 3, 4)
    opens: time = time(9, 0)
    closes: time = time(17, 0)

    def is_open(self, at: float) -> bool:
        local = datetime.fromtimestamp(at, ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.opens <= local.time() < self.closes

    def next_opening(self, at: float) -> datetime:
        """The next moment people are back (local time); ``at`` itself when open."""
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(at, zone)
        if self.is_open(at):
            return local
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            opening = datetime.combine(day, self.opens, zone)
            if day.weekday() in self.days and opening > local:
                return opening
        raise ValueError("business hours name no working day")


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoffRules:
    """What hands a conversation to a person; each trigger can be switched off.

    ``desk`` is False when no reps' channel is configured: a request is then recorded and the
    customer told, but the bot is not muted (nobody would answer).
    """

    desk: bool = False
    on_request: bool = True
    keywords: tuple[str, ...] = ()
    low_confidence_after: int | None = 3
    on_engine_request: bool = True
    engine_failures_after: int | None = 2
    hours: BusinessHours | None = None
    unclaimed_reminder_seconds: float | None = 300
    expected_wait_minutes: int = 15
    note_prefix: str = "//"
    show_rep_names: bool = True
    transcript_turns: int = 10


def asked_for_person(rules: HandoffRules, text: str, *, button: str | None = None) -> str | None:
    """The reason to hand off when the customer's words ask for it (or name a keyword), else None."""
    if rules.on_request and ((button is not None and text.strip() == button) or phrases.asks_for_person(text)):
        return "customer asked for a person"
    # Keywords only make sense with a desk: without one nobody would take the conversation.
    keyword = keyword_in(rules.keywords, text) if rules.desk else None
    return f"keyword: {keyword}" if keyword else None


def keyword_in(keywords: Sequence[str], text: str) -> str | None:
    """The first admin keyword found as whole words in ``text`` (accents and case ignored)."""
    words = _words(text)
    for keyword in keywords:
        if _words(keyword).strip() and _words(keyword) in words:
            return keyword
    return None


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"\w+", phrases.fold(text))) + " "


def after_low_confidence(rules: HandoffRules, streak: int) -> str | None:
    limit = rules.low_confidence_after
    if limit and streak >= limit:
        return f"{streak} answers in a row the bot was not sure of"
    return None


def after_engine_request(rules: HandoffRules, reason: str | None) -> str | None:
    return f"the assistant asked for a person: {reason}" if reason and rules.on_engine_request else None


def after_engine_failures(rules: HandoffRules, failures: int) -> str | None:
    limit = rules.engine_failures_after
    if limit and failures >= limit:
        return f"the answer engine failed {failures} times in a row"
    return None


def is_note(rules: HandoffRules, text: str) -> bool:
    """Rep messages starting with the note prefix stay in the thread; the customer never sees them."""
    return bool(rules.note_prefix) and text.lstrip().startswith(rules.note_prefix)


def reminders_due(rules: HandoffRules, requested_at: float, now: float) -> int:
    """How many "still waiting" reminders the customer should have had by ``now`` (at most a few)."""
    every = rules.unclaimed_reminder_seconds
    if not every or now < requested_at:
        return 0
    return min(MAX_REMINDERS, math.floor((now - requested_at) / every))


def parse_rating(text: str) -> int | None:
    """A 1-5 rating from "4", "4/5", "4 stars" or a row of stars; None for anything else."""
    cleaned = text.strip().lower()
    if cleaned and set(cleaned) <= {"⭐", "★", " "}:
        stars = sum(1 for char in cleaned if char != " ")
        return stars if 1 <= stars <= 5 else None
    head = cleaned.split("/")[0].split(" ")[0]
    spelled = {head, f"{head}/5", f"{head} stars", f"{head} star"}
    if head.isdigit() and 1 <= int(head) <= 5 and cleaned in spelled:
        return int(head)
    return None


def mask(customer: str) -> str:
    """Enough of a customer id for a rep to tell two apart, never the whole phone number or id."""
    visible = customer[-4:] if len(customer) > 6 else ""
    return "•" * 4 + visible


def header(*, channel: str, customer: str, reason: str, history: Sequence[Turn], turns: int,
           note_prefix: str, hours_note: str | None = None, texts: DeskTexts = DESK_TEXTS) -> str:
    """The first message of a conversation's thread in the reps' channel (neutral Markdown)."""
    # Every quoted text is someone else's (the customer's, an LLM's): links spelled out, the rest literal.
    lines = [texts.needs_person.format(channel=channel, customer=mask(customer), reason=quoted(reason))]
    if hours_note:
        lines.append(hours_note)
    recent = history[-turns:] if turns > 0 else ()
    if recent:
        lines.append("")
        lines.append(texts.last_messages)
        for turn in recent:
            lines.append(f"> **{_speaker(turn.role, texts)}:** {escape(_one_line(spelled_links(turn.text)))}")
    lines.append("")
    lines.append(texts.reply_hint.format(prefix=note_prefix))
    return "\n".join(lines)


def _speaker(role: str, texts: DeskTexts) -> str:
    return {"customer": texts.speaker_customer, "bot": texts.speaker_bot, "agent": texts.speaker_agent}.get(role, role)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
