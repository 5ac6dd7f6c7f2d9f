"""What happens while a person has the conversation: relaying both ways and the reps' actions. Pure.

Each function takes the session and one envelope and returns an ``Outcome``: the new session, the
replies (to the customer's channel and to the desk) and the handoff events to log. The bot's
answer engine is never consulted here, which is what keeps the bot muted during a handoff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from parley.core import handoff
from parley.core.desk import DeskKind, DeskPost
from parley.core.desk_texts import DESK_TEXTS, DeskTexts
from parley.core.envelope import AnswerMeta, Attachment, Envelope, Reply
from parley.core.handoff import DESK, HandoffRules, InvalidTransition
from parley.core.markdown import quoted
from parley.core.sessions import Session, Turn
from parley.core.texts import ENGLISH

RATINGS = ("1", "2", "3", "4", "5")


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoffTexts:
    """What the customer is told at each step, in one language (``parley.core.texts``)."""

    already_requested: str = ENGLISH["handoff_already_requested"]
    outside_hours: str = ENGLISH["outside_hours"]  # {day}, {time}, {zone}: when people are back
    reminder: str = ENGLISH["reminder"]
    joined: str = ENGLISH["joined"]
    joined_anonymous: str = ENGLISH["joined_anonymous"]
    handed_back: str = ENGLISH["handed_back"]
    rate: str = ENGLISH["rating_prompt"]
    rated: str = ENGLISH["rated"]
    engine_failed: str = ENGLISH["engine_failed"]
    # A message that failed every attempt (set aside as a dead letter): said at once, not left unanswered.
    message_failed: str = ENGLISH["message_failed"]
    team: str = ENGLISH["team"]
    desk: DeskTexts = DESK_TEXTS  # what the reps read, in their language whatever the customer's


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: str
    reason: str | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    session: Session
    replies: tuple[Reply, ...] = ()
    events: tuple[Event, ...] = ()
    turns: tuple[Turn, ...] = ()


def to_desk(session: Session, text: str, *, kind: DeskKind, author: str | None = None,
            step: str | None = None, files: tuple[Attachment, ...] = ()) -> Reply:
    """A message for the conversation's thread in the reps' channel; ``step`` names a status's step
    (``core.desk.QUEUE_STEPS`` are those that change who is waiting)."""
    return Reply(conversation_id=session.conversation_id, channel=DESK, text=text, author=author,
                 desk=DeskPost(kind=kind, handoff=session.handoffs, customer_channel=session.channel),
                 meta=AnswerMeta(engine="handoff", intent=f"desk_{step or kind}"), files=files)


def to_customer(session: Session, text: str, *, intent: str, author: str | None = None,
                quick_replies: tuple[str, ...] = (), files: tuple[Attachment, ...] = ()) -> Reply:
    """A message on the customer's own channel (whatever channel the envelope came from)."""
    return Reply(conversation_id=session.conversation_id, channel=session.channel, route=session.route,
                 text=text, author=author, quick_replies=quick_replies, files=files,
                 meta=AnswerMeta(engine="person" if author else "handoff", intent=intent))


def files_of(envelope: Envelope) -> tuple[Attachment, ...]:
    """The message's files that can be passed on (a sticker or a location is not one)."""
    return tuple(attachment for attachment in envelope.attachments if attachment.fetchable)


def relay_customer(rules: HandoffRules, texts: HandoffTexts, session: Session, envelope: Envelope,
                   now: float) -> Outcome:
    """A customer message while handed off goes to the thread; the bot stays silent."""
    text = envelope.text or (texts.desk.customer_attachments.format(count=len(envelope.attachments))
                             if envelope.attachments else texts.desk.customer_empty)
    replies: tuple[Reply, ...] = (to_desk(session, quoted(envelope.text) if envelope.text else text,
                                          kind="customer"),)
    if files := files_of(envelope):  # a reply of their own: each file is sent (and retried) apart
        replies = (*replies, to_desk(session, "", kind="customer", files=files))
    if session.handoff == "waiting" and handoff.asked_for_person(rules, envelope.text) is not None:
        # Asking again while waiting: reassure, never open a second thread.
        replies = (*replies, to_customer(session, texts.already_requested, intent="handoff_already"))
    return Outcome(session=session, replies=replies, turns=(Turn(role="customer", text=text, at=now),))


def on_agent(rules: HandoffRules, texts: HandoffTexts, session: Session, envelope: Envelope,
             now: float) -> Outcome:
    """A rep's thread reply or button press, for the customer's conversation."""
    action = envelope.action or "reply"
    actor = envelope.sender_name or envelope.sender
    if action == "note" or (action == "reply" and handoff.is_note(rules, envelope.text)):
        return Outcome(session=session)
    if action not in ("reply", "article", "claim", "hand_back", "resolve"):
        unknown = to_desk(session, texts.desk.unknown_action.format(action=repr(action)), kind="error")
        return Outcome(session=session, replies=(unknown,))
    if not session.is_handed_off:
        note = texts.desk.back_with_bot.format(state=session.handoff)
        return Outcome(session=session, replies=(to_desk(session, note, kind="error"),))
    if action == "reply" and len(files_of(envelope)) < len(envelope.attachments):
        # An attachment Parley cannot fetch (a Slack post, an external file): the rep is told, and
        # the text and the files that can go still go.
        warning = to_desk(session, texts.desk.files_not_sent, kind="error")
        if not envelope.text.strip() and not files_of(envelope):
            return Outcome(session=session, replies=(warning,))
        sent = _reply(rules, texts, session, envelope, now)
        return replace(sent, replies=(*sent.replies, warning))
    try:
        if action == "reply":
            return _reply(rules, texts, session, envelope, now)
        if action == "article":  # "Send article": a reply the thread would not show otherwise
            sent = _reply(rules, texts, session, envelope, now)
            title = envelope.text.split("\n", 1)[0]
            sent_note = texts.desk.article_note.format(actor=quoted(actor), title=title)  # **the title**, ours
            note = to_desk(sent.session, sent_note, kind="status", step="article")
            return replace(sent, replies=(*sent.replies, note))
        if action == "claim":
            return _claim(rules, texts, session, actor)
        if action == "hand_back":
            return _hand_back(texts, session, actor)
        return _resolve(texts, session, actor)
    except InvalidTransition as exc:
        said = (texts.desk.already_done_by.format(actor=quoted(session.claimed_by), reason=exc)
                if session.claimed_by else texts.desk.already_done.format(reason=exc))
        done = to_desk(session, said, kind="error")
        return Outcome(session=session, replies=(done,))


def remind(rules: HandoffRules, texts: HandoffTexts, session: Session, now: float) -> Outcome:
    """Nobody claimed the conversation in time: tell the customer again, with the expected wait."""
    if session.handoff != "waiting" or session.handoff_requested_at is None:
        return Outcome(session=session)
    if rules.hours is not None and not rules.hours.is_open(now):
        return Outcome(session=session)  # they were told when people are back
    due = handoff.reminders_due(rules, session.handoff_requested_at, now)
    if due <= session.reminders_sent:
        return Outcome(session=session)
    minutes = round((now - session.handoff_requested_at) / 60)
    told = texts.reminder.format(minutes=rules.expected_wait_minutes)
    replies = (to_customer(session, told, intent="handoff_reminder"),
               to_desk(session, texts.desk.reminded_note.format(minutes=minutes), kind="status",
                       step="reminded"))
    return Outcome(session=replace(session, reminders_sent=due), replies=replies,
                   events=(Event(kind="reminded", reason=f"after {minutes} min"),))


def rate(texts: HandoffTexts, session: Session, score: int, now: float, text: str) -> Outcome:
    """The customer's 1-5 rating after a resolve: recorded, thanked, shown to the reps."""
    replies = (to_customer(session, texts.rated, intent="handoff_rated"),
               to_desk(session, texts.desk.rated_note.format(score=score), kind="status", step="rating"))
    return Outcome(session=replace(session, rating_prompt=None), replies=replies,
                   events=(Event(kind="rating", reason=str(score)),),
                   turns=(Turn(role="customer", text=text, at=now),
                          Turn(role="bot", text=texts.rated, at=now)))


def _claim(rules: HandoffRules, texts: HandoffTexts, session: Session, actor: str) -> Outcome:
    state = handoff.transition(session.handoff, "claim")
    claimed = replace(session, handoff=state, claimed_by=actor)
    joined = texts.joined.format(name=actor) if rules.show_rep_names else texts.joined_anonymous
    replies = (to_customer(claimed, joined, intent="handoff_claimed"),
               to_desk(claimed, texts.desk.claimed_note.format(actor=quoted(actor)), kind="status",
                       step="claimed"))
    return Outcome(session=claimed, replies=replies, events=(Event(kind="claimed", actor=actor),))


def _reply(rules: HandoffRules, texts: HandoffTexts, session: Session, envelope: Envelope,
           now: float) -> Outcome:
    actor = envelope.sender_name or envelope.sender
    events: tuple[Event, ...] = ()
    if session.handoff == "waiting":  # the first reply in an unclaimed thread claims it
        session = replace(session, handoff=handoff.transition(session.handoff, "claim"), claimed_by=actor)
        events = (Event(kind="claimed", actor=actor),)
    if session.first_rep_reply_at is None:
        session = replace(session, first_rep_reply_at=now)
        events = (*events, Event(kind="first_reply", actor=actor))
    author = actor if rules.show_rep_names else texts.team
    sent: tuple[Reply, ...] = (to_customer(session, envelope.text, intent="agent_reply", author=author),)
    if files := files_of(envelope):  # the rep's files after their text, each sent (and retried) apart
        files_reply = to_customer(session, "", intent="agent_files", author=author, files=files)
        sent = (*sent, files_reply) if envelope.text.strip() else (files_reply,)
    # Claimed by this reply: the thread's header must say so (the desk posts nothing in the thread).
    header = ((to_desk(session, "", kind="header", step="claimed"),) if any(e.kind == "claimed" for e in events)
              else ())
    return Outcome(session=session, replies=(*sent, *header), events=events,
                   turns=(Turn(role="agent", text=envelope.text, at=now),))


def _hand_back(texts: HandoffTexts, session: Session, actor: str) -> Outcome:
    back = replace(session, handoff=handoff.transition(session.handoff, "hand_back"), claimed_by=None,
                   low_confidence_streak=0, engine_failures=0)
    replies = (to_customer(back, texts.handed_back, intent="handoff_handed_back"),
               to_desk(session, texts.desk.handed_back_note.format(actor=quoted(actor)), kind="status",
                       step="handed_back"))
    return Outcome(session=back, replies=replies, events=(Event(kind="handed_back", actor=actor),))


def _resolve(texts: HandoffTexts, session: Session, actor: str) -> Outcome:
    done = replace(session, handoff=handoff.transition(session.handoff, "resolve"), claimed_by=None,
                   low_confidence_streak=0, engine_failures=0)
    prompt = to_customer(done, texts.rate, intent="handoff_rating_prompt", quick_replies=RATINGS)
    replies = (prompt, to_desk(session, texts.desk.resolved_note.format(actor=quoted(actor)), kind="status",
                               step="resolved"))
    return Outcome(session=done, replies=replies, events=(Event(kind="resolved", actor=actor),))
