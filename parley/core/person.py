"""A customer asks for a person: what they are told, and the request the reps' channel gets.

Part of the dialogue (``core.dialogue`` decides when a person is asked for: the customer says so,
the engine fails, or it stays unsure); channel-blind and sans-IO like it.
"""

from __future__ import annotations

from dataclasses import replace

from parley.core import handoff, relay
from parley.core.desk_texts import DESK_TEXTS, DeskTexts
from parley.core.envelope import Envelope, Reply
from parley.core.handoff import HandoffRules
from parley.core.policy import Policy
from parley.core.sessions import Session
from parley.core.texts import back_at


def request(policy: Policy, session: Session, *, reason: str, now: float) -> tuple[str, Session]:
    """Hand the conversation to a person: from now on the bot is silent until handed back.

    Returns what the customer is told, and the session as it is after the request.
    """
    rules = policy.handoff
    if not rules.desk:
        # No reps' channel: the request is recorded (once) and the customer told the truth,
        # that no person will answer here; the bot goes on.
        if session.handoff_requested_at is None:
            session = replace(session, handoff_reason=reason, handoff_requested_at=now,
                              handoffs=session.handoffs + 1)
        return policy.handoff_unavailable, session
    if session.is_handed_off:  # one open request at a time: never a second thread
        return policy.handoff_texts.already_requested, session
    session = replace(session, handoff=handoff.transition(session.handoff, "request"),
                      handoff_reason=reason, handoff_requested_at=now, handoffs=session.handoffs + 1,
                      claimed_by=None, first_rep_reply_at=None, reminders_sent=0,
                      low_confidence_streak=0, engine_failures=0)
    text = policy.handoff_requested
    if rules.hours is not None and not rules.hours.is_open(now):
        text = back_at(policy.handoff_texts.outside_hours, rules.hours.next_opening(now), policy.language)
    return text, session


def opened(rules: HandoffRules, before: Session, after: Session, envelope: Envelope, *, now: float,
           desk: DeskTexts = DESK_TEXTS) -> tuple[tuple[Reply, ...], tuple[relay.Event, ...]]:
    """A new handoff request (``after`` counts one more than ``before``): log it, and open its
    thread in the reps' channel."""
    if after.handoffs <= before.handoffs:
        return (), ()
    events = (relay.Event(kind="requested", reason=after.handoff_reason, actor=envelope.sender),)
    if not rules.desk:
        return (), events
    hours, hours_note = rules.hours, None
    if hours is not None and not hours.is_open(now):
        hours_note = back_at(desk.outside_hours_note, hours.next_opening(now), desk.language)
    text = handoff.header(channel=after.channel, customer=after.customer or envelope.sender,
                          reason=after.handoff_reason or "requested", history=after.history,
                          turns=rules.transcript_turns, note_prefix=rules.note_prefix,
                          hours_note=hours_note, texts=desk)
    opening = relay.to_desk(after, text, kind="open")
    # A file sent with the message that asked for a person goes to the thread after its header.
    if files := relay.files_of(envelope):
        return (opening, relay.to_desk(after, "", kind="customer", files=files)), events
    return (opening,), events
