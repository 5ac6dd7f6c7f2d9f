"""The dialogue: one customer message in, the replies out. Channel-blind and sans-IO.

Order of decisions for a message: handed off to a person (then the bot is silent: see
``parley.core.relay``) -> a pending 1-5 rating -> a flood's notice -> media only -> asks for a
person -> greeting -> thanks -> answer from the engine, or a fallback that offers a person when the
engine is not confident enough. Rep actions and scheduled re-checks arrive as envelopes too and go
to the relay.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from parley.core import handoff, options, person, phrases, relay
from parley.core.engine import AnswerEngine, TokenSink
from parley.core.envelope import AnswerMeta, Envelope, Reply, reply_id
from parley.core.handoff import DESK, HandoffEvents
from parley.core.policy import FLOOD_NOTICE, TALK_TO_PERSON, THROTTLED, Policy  # noqa: F401 - re-exported
from parley.core.relay import Outcome
from parley.core.sessions import Session, SessionStore, Turn
from parley.core.texts import LanguageDetector

@dataclass(frozen=True, slots=True, kw_only=True)
class _Draft:
    text: str
    meta: AnswerMeta
    quick_replies: tuple[str, ...] = ()


# Where the streamed text of the answer to a message goes, given the message and the id its reply
# will have; None when its channel only shows finished text. Wiring decides which channels show
# text live (the widget), so the dialogue stays channel-blind and non-live channels never stream.
StreamSink = Callable[[Envelope, str], TokenSink | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What one message leads to: the replies, and what to keep once they are logged.

    ``session`` is None when nothing changed that must be saved; ``rated`` is the rating prompt's
    reply id and the score a customer gave it.
    """

    replies: tuple[Reply, ...]
    session: Session | None = None
    events: tuple[relay.Event, ...] = ()
    rated: tuple[str, int] | None = None


class Dialogue:
    def __init__(self, *, engine: AnswerEngine, sessions: SessionStore, policy: Policy,
                 clock: Callable[[], float] = time.time, stream: StreamSink | None = None,
                 events: HandoffEvents | None = None,
                 on_engine_error: Callable[[Envelope, Exception], None] | None = None,
                 detect: LanguageDetector | None = None) -> None:
        self.engine = engine
        self._detect = detect
        self.events = events
        self._on_engine_error = on_engine_error
        self.sessions = sessions
        self.policy = policy
        self._clock = clock
        self._stream = stream

    def handle(self, envelope: Envelope) -> list[Reply]:
        """Answer one message and keep what it changed, without a conversation log (tests, benches).

        The worker does more (``parley.worker.pipeline``): it logs the replies with the handoff
        events and the rating in one transaction, after ``commit`` and before sending.
        """
        decision = self.decide(envelope)
        self.commit(decision)
        session = decision.session
        if self.events is not None and session is not None:
            for event in decision.events:
                self.events.record_handoff_event(conversation_id=session.conversation_id, kind=event.kind,
                                                 reason=event.reason, actor=event.actor)
            if decision.rated is not None:
                message_id, score = decision.rated
                self.events.record_feedback(conversation_id=session.conversation_id, channel=session.channel,
                                            message_id=message_id, kind="handoff", score=score)
        return list(decision.replies)

    def decide(self, envelope: Envelope) -> Decision:
        """The replies to one message and the state to keep, saving nothing.

        The state is saved (``commit``) before the replies are logged, and it records which message
        it holds and the state before it. A retry whose replies were never logged (the log failed
        after the save) so decides again from the state the message found, never from one that
        already holds its own effects (say, a handoff requested, whose thread would then never open).
        """
        loaded = self.sessions.load(envelope.conversation_id)
        if loaded is not None and loaded.applied == envelope.dedupe_key:
            loaded = loaded.before
        decision = self._decide_from(loaded, envelope)
        if decision.session is None:
            return decision
        before = None if loaded is None else replace(loaded, before=None)
        return replace(decision, session=replace(decision.session, applied=envelope.dedupe_key, before=before))

    def commit(self, decision: Decision, *, fence: tuple[int, int] | None = None) -> None:
        """Keep the conversation's new state (the log keeps the rest: replies, events, rating).

        ``fence`` (``Session.fence``) makes the save refuse to overwrite a later holder's state."""
        if decision.session is not None:
            self.sessions.save(replace(decision.session, fence=fence))

    def _decide_from(self, loaded: Session | None, envelope: Envelope) -> Decision:
        started = self._clock()
        if loaded is None and envelope.role != "customer":
            return Decision(replies=self._expired(envelope))
        session = self._speaking(loaded or self._start(envelope), envelope)
        policy = self.policy.in_language(session.language)
        outcome = self._while_handed_off(policy, session, envelope)
        if outcome is not None:
            return self._finish(envelope, session, outcome)
        if envelope.action == THROTTLED:  # a flood's one notice: no engine, no change to the state
            return Decision(replies=(self._flood_notice(policy, envelope),))
        before = session = replace(session, rating_prompt=None)
        envelope = options.chosen(session.offered, envelope)
        draft, session = self._decide(policy, session, envelope)
        session = replace(session, offered=draft.quick_replies)
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
            language=session.language,
        )
        now = self._clock()
        turns = (Turn(role="customer", text=envelope.text, at=now), Turn(role="bot", text=reply.text, at=now))
        session = session.with_turns(turns, max_turns=self.policy.history_turns,
                                     max_chars=self.policy.history_chars)
        desk, events = person.opened(self.policy.handoff, before, session, envelope, now=now,
                                     desk=self.policy.handoff_texts.desk)
        replies = (reply, *(replace(r, in_reply_to=envelope.message_id, reply_id=reply_id(envelope, i + 1))
                            for i, r in enumerate(desk)))
        return Decision(replies=replies, session=session, events=events)

    def failure_text(self, envelope: Envelope) -> tuple[str, str | None]:
        """What to tell a customer whose message failed every attempt, and in which language: the
        conversation's if its state can still be read (the store may be what failed), else the one
        the message itself shows."""
        try:
            loaded = self.sessions.load(envelope.conversation_id)
        except Exception:  # noqa: BLE001 - any failure here only costs the language
            loaded = None
        language = self._speaking(loaded or self._start(envelope), envelope).language
        return self.policy.in_language(language).handoff_texts.message_failed, language

    def _start(self, envelope: Envelope) -> Session:
        now = self._clock()
        return Session(conversation_id=envelope.conversation_id, channel=envelope.channel,
                       route=envelope.route, customer=envelope.sender, created_at=now, updated_at=now)

    def _speaking(self, session: Session, envelope: Envelope) -> Session:
        """The session with the language its customer's message shows (reps' words change nothing)."""
        texts = self.policy.texts
        if texts is None or envelope.role != "customer":
            return session
        language = texts.choose(current=session.language, hint=envelope.language, text=envelope.text,
                                detect=self._detect)
        return session if language == session.language else replace(session, language=language)

    def _while_handed_off(self, policy: Policy, session: Session, envelope: Envelope) -> Outcome | None:
        """Rep actions, re-checks, relayed customer messages and ratings; None: the bot answers."""
        rules, texts, now = policy.handoff, policy.handoff_texts, self._clock()
        if envelope.role == "agent":
            return relay.on_agent(rules, texts, session, envelope, now)
        if envelope.role == "system":  # a re-check, judged as of when it was scheduled
            return relay.remind(rules, texts, session, envelope.timestamp)
        if session.is_handed_off and rules.desk:
            return relay.relay_customer(rules, texts, session, envelope, now)
        score = handoff.parse_rating(envelope.text) if session.rating_prompt else None
        if score is not None:
            return relay.rate(texts, session, score, now, envelope.text)
        return None

    def _expired(self, envelope: Envelope) -> tuple[Reply, ...]:
        """A rep acting on a conversation the session store forgot: say so in the thread, save nothing."""
        if envelope.role != "agent":
            return ()
        ghost = Session(conversation_id=envelope.conversation_id, channel="unknown")
        note = relay.to_desk(ghost, self.policy.handoff_texts.desk.expired, kind="error")
        return (replace(note, in_reply_to=envelope.message_id, reply_id=reply_id(envelope, 0)),)

    def _finish(self, envelope: Envelope, before: Session, outcome: Outcome) -> Decision:
        session = outcome.session
        replies = tuple(replace(r, in_reply_to=envelope.message_id, reply_id=reply_id(envelope, i),
                                language=r.language if r.channel == DESK else session.language)
                        for i, r in enumerate(outcome.replies))
        prompt = next((r.reply_id for r in replies if r.meta.intent == "handoff_rating_prompt"), None)
        if prompt is not None:
            session = replace(session, rating_prompt=prompt)
        if outcome.turns:
            session = session.with_turns(outcome.turns, max_turns=self.policy.history_turns,
                                         max_chars=self.policy.history_chars)
        rating = next((e for e in outcome.events if e.kind == "rating"), None)
        rated = None
        if rating is not None and before.rating_prompt:
            rated = (before.rating_prompt, int(rating.reason or 0))
        return Decision(replies=replies, session=session, events=outcome.events, rated=rated)

    def _flood_notice(self, policy: Policy, envelope: Envelope) -> Reply:
        # Its id is fixed per message, so a retried flood message is told once.
        return Reply(conversation_id=envelope.conversation_id, channel=envelope.channel,
                     route=envelope.route, in_reply_to=envelope.message_id, text=policy.flood_notice,
                     reply_id=reply_id(envelope, 0), meta=AnswerMeta(engine="throttle", intent=THROTTLED),
                     language=policy.language)

    def _decide(self, policy: Policy, session: Session, envelope: Envelope) -> tuple[_Draft, Session]:
        text = envelope.text
        if envelope.is_media_only:
            return _Draft(text=policy.media_only, meta=AnswerMeta(intent="media_only")), session
        if not text.strip():  # "@Parley" and nothing else: invite the question
            return _Draft(text=policy.greeting, meta=AnswerMeta(intent="empty"),
                          quick_replies=policy.quick_replies), session
        pressed = text.strip() if text.strip() in policy.talk_buttons() else None
        reason = handoff.asked_for_person(policy.handoff, text, button=pressed)
        if reason is not None:
            return self._request_person(policy, session, reason=reason)
        if phrases.is_greeting(text):
            return _Draft(text=policy.greeting, meta=AnswerMeta(intent="greeting"),
                          quick_replies=policy.quick_replies), session
        if phrases.is_thanks(text):
            return _Draft(text=policy.thanks, meta=AnswerMeta(intent="thanks")), session
        return self._answer(policy, session, envelope)

    def _answer(self, policy: Policy, session: Session, envelope: Envelope) -> tuple[_Draft, Session]:
        rules = policy.handoff
        try:
            answer = self.engine.answer(envelope.text, session.history, on_token=self._sink(envelope))
        except Exception as exc:
            if rules.engine_failures_after is None:
                raise
            if self._on_engine_error is not None:
                self._on_engine_error(envelope, exc)
            # Whatever engine and whatever went wrong: count it, and after a few hand the
            # conversation to a person rather than leave the customer in limbo.
            failures = session.engine_failures + 1
            session = replace(session, engine_failures=failures)
            reason = handoff.after_engine_failures(rules, failures) if rules.desk else None
            if reason is not None:
                return self._request_person(policy, session, reason=reason)
            return _Draft(text=policy.handoff_texts.engine_failed,
                          meta=AnswerMeta(engine=self.engine.name, intent="engine_error")), session
        session = replace(session, engine_failures=0)
        meta = answer.meta()
        if engine_reason := handoff.after_engine_request(rules, answer.handoff_reason):
            draft, session = self._request_person(policy, session, reason=engine_reason)
            return replace(draft, meta=replace(meta, intent="handoff_request", sources=())), session
        if answer.confidence < policy.min_confidence or not answer.text:
            streak = session.low_confidence_streak + 1
            low = handoff.after_low_confidence(rules, streak) if rules.desk else None
            if low is not None:
                streaky = replace(session, low_confidence_streak=streak)
                return self._request_person(policy, streaky, reason=low)
            fallback = _Draft(text=policy.not_sure, quick_replies=(policy.talk_to_person,),
                              meta=replace(meta, intent="fallback", sources=()))
            if not rules.desk:
                fallback = replace(fallback, text=policy.not_sure_without_people, quick_replies=())
            return fallback, replace(session, low_confidence_streak=streak)
        return _Draft(text=answer.text, meta=meta), replace(session, low_confidence_streak=0)

    def _request_person(self, policy: Policy, session: Session, *, reason: str) -> tuple[_Draft, Session]:
        text, session = person.request(policy, session, reason=reason, now=self._clock())
        return _Draft(text=text, meta=AnswerMeta(intent="handoff_request")), session

    def _sink(self, envelope: Envelope) -> TokenSink | None:
        # The streamed pieces carry the id the finished reply will have, so a client can replace them.
        return None if self._stream is None else self._stream(envelope, reply_id(envelope, 0))

