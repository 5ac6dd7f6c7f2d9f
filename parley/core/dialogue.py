"""The dialogue: one customer message in, the replies out. Channel-blind and sans-IO.

Order of decisions for a message: media only -> asks for a person -> greeting -> thanks -> answer
from the engine, or a fallback that offers a person when the engine is not confident enough.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from parley.core import phrases
from parley.core.engine import Answer, AnswerEngine
from parley.core.envelope import AnswerMeta, Envelope, Reply
from parley.core.sessions import Session, SessionStore, Turn

TALK_TO_PERSON = "Talk to a person"


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What the admin configures about the conversation, with the customer-facing texts."""

    greeting: str
    min_confidence: float = 0.14
    history_turns: int = 20
    history_chars: int = 8000
    quick_replies: tuple[str, ...] = ()
    not_sure: str = ("I'm not sure I can answer that. Could you rephrase it, "
                     "or would you like to talk to a person?")
    handoff_requested: str = ("I've let our support team know you'd like to talk to a person. "
                              "Someone will reply here as soon as they can.")
    thanks: str = "You're welcome! Is there anything else I can help with?"
    media_only: str = "Sorry, I can only read text for now. Could you type your question?"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Draft:
    text: str
    meta: AnswerMeta
    quick_replies: tuple[str, ...] = ()


class Dialogue:
    def __init__(self, *, engine: AnswerEngine, sessions: SessionStore, policy: Policy,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.sessions = sessions
        self.policy = policy
        self._clock = clock

    def handle(self, envelope: Envelope) -> list[Reply]:
        """Answer one message and save the conversation's new state."""
        started = self._clock()
        session = self.sessions.load(envelope.conversation_id) or self._start(envelope)
        draft, session = self._decide(session, envelope)
        latency_ms = round((self._clock() - started) * 1000, 3)
        reply = Reply(
            conversation_id=envelope.conversation_id,
            channel=envelope.channel,
            route=envelope.route,
            in_reply_to=envelope.message_id,
            text=draft.text,
            quick_replies=draft.quick_replies,
            meta=replace(draft.meta, latency_ms=latency_ms),
            reply_id=reply_id(envelope, 0),
        )
        now = self._clock()
        turns = (Turn(role="customer", text=envelope.text, at=now), Turn(role="bot", text=reply.text, at=now))
        self.sessions.save(session.with_turns(turns, max_turns=self.policy.history_turns,
                                              max_chars=self.policy.history_chars))
        return [reply]

    def _start(self, envelope: Envelope) -> Session:
        now = self._clock()
        return Session(conversation_id=envelope.conversation_id, channel=envelope.channel,
                       route=envelope.route, created_at=now, updated_at=now)

    def _decide(self, session: Session, envelope: Envelope) -> tuple[_Draft, Session]:
        text = envelope.text
        if envelope.is_media_only:
            return _Draft(text=self.policy.media_only, meta=AnswerMeta(intent="media_only")), session
        if phrases.asks_for_human(text) or text.strip() == TALK_TO_PERSON:
            return self._request_person(session, reason="customer asked for a person")
        if phrases.is_greeting(text):
            return _Draft(text=self.policy.greeting, meta=AnswerMeta(intent="greeting"),
                          quick_replies=self.policy.quick_replies), session
        if phrases.is_thanks(text):
            return _Draft(text=self.policy.thanks, meta=AnswerMeta(intent="thanks")), session
        return self._answer(session, text)

    def _answer(self, session: Session, text: str) -> tuple[_Draft, Session]:
        answer = self.engine.answer(text, session.history)
        meta = _meta(answer)
        if answer.confidence < self.policy.min_confidence or not answer.text:
            streak = session.low_confidence_streak + 1
            fallback = _Draft(text=self.policy.not_sure, quick_replies=(TALK_TO_PERSON,),
                              meta=replace(meta, intent="fallback", sources=()))
            return fallback, replace(session, low_confidence_streak=streak)
        return _Draft(text=answer.text, meta=meta), replace(session, low_confidence_streak=0)

    def _request_person(self, session: Session, *, reason: str) -> tuple[_Draft, Session]:
        # The handoff itself (a rep thread, the bot muted) belongs to the handoff flow; here the
        # request is recorded on the session so that flow and the log can see it.
        if session.handoff_requested_at is None:
            session = replace(session, handoff_reason=reason, handoff_requested_at=self._clock())
        return _Draft(text=self.policy.handoff_requested, meta=AnswerMeta(intent="handoff_request")), session


def reply_id(envelope: Envelope, index: int) -> str:
    """Deterministic, so a retried message produces the same reply ids and is sent only once."""
    digest = hashlib.sha256(envelope.dedupe_key.encode("utf-8")).hexdigest()[:24]
    return f"{digest}-{index}"


def _meta(answer: Answer) -> AnswerMeta:
    return AnswerMeta(engine=answer.engine, confidence=answer.confidence, sources=answer.sources,
                      model_version=answer.model_version, intent=answer.intent)
