"""The dialogue core, read like a transcript."""

from __future__ import annotations

from pathlib import Path

from parley.core.envelope import Attachment, Envelope, reply_id
from parley.core.sessions import Session, Turn
from parley.stores.memory import MemorySessionStore
from tests.conftest import Bot, make_envelope, make_settings


def test_answers_from_the_knowledge_base_and_names_the_article(bot: Bot) -> None:
    reply = bot.ask("How do I reset my password?")
    assert "Forgot password" in reply.text
    assert [source.id for source in reply.meta.sources] == ["reset-password"]
    assert reply.meta.engine == "offline"
    assert reply.meta.confidence is not None and reply.meta.confidence > 0.14


def test_greets_with_the_configured_greeting_and_quick_replies(bot: Bot) -> None:
    reply = bot.ask("Hello!")
    assert reply.text.startswith("Hi! I'm the Acme assistant")
    assert "Track my order" in reply.quick_replies


def test_unknown_question_gets_not_sure_and_no_person_nobody_would_send(bot: Bot) -> None:
    # The sample configuration has no reps' channel: offering a person would be a false promise.
    reply = bot.ask("what should I name my new puppy")
    assert reply.text == "I'm not sure I can answer that. Could you rephrase it?"
    assert reply.quick_replies == ()
    assert reply.meta.sources == ()
    assert bot.services.sessions.load(bot.conversation_id).low_confidence_streak == 1


def test_a_good_answer_resets_the_low_confidence_streak(bot: Bot) -> None:
    bot.ask("what should I name my new puppy")
    bot.ask("How do I reset my password?")
    assert bot.services.sessions.load(bot.conversation_id).low_confidence_streak == 0


def test_asking_for_a_person_in_four_languages_is_recorded(tmp_path: Path) -> None:
    # Each is told in its own language that no person answers here (no reps' channel configured).
    for text, told in [("Can I talk to a human?", "support team"),
                       ("quiero hablar con una persona", "equipo de soporte"),
                       ("je voudrais parler à un conseiller", "équipe d'assistance"),
                       ("Ich möchte mit einem Mitarbeiter sprechen", "Support-Team")]:
        bot = Bot(make_settings(tmp_path))
        reply = bot.ask(text)
        assert told in reply.text, text
        session = bot.services.sessions.load(bot.conversation_id)
        assert session.handoff_requested_at is not None, text


def test_media_only_message_gets_a_polite_text_only_reply(bot: Bot) -> None:
    envelope = make_envelope("", attachments=(Attachment(content_type="image/jpeg"),),
                             conversation_id=bot.conversation_id)
    [reply] = bot.services.dialogue.handle(envelope)
    assert "only read text" in reply.text


def test_history_is_kept_in_the_session_and_bounded(tmp_path: Path) -> None:
    bot = Bot(make_settings(tmp_path))
    for _ in range(15):
        bot.ask("thanks!")
    history = bot.services.sessions.load(bot.conversation_id).history
    assert len(history) == 20
    assert [turn.role for turn in history[:2]] == ["customer", "bot"]


def test_history_is_bounded_by_characters_too() -> None:
    session = Session(conversation_id="c", channel="test")
    turns = tuple(Turn(role="customer", text="x" * 400, at=float(i)) for i in range(10))
    assert len(session.with_turns(turns, max_turns=20, max_chars=1000).history) == 2


def test_reply_ids_are_stable_for_a_retried_message() -> None:
    envelope = Envelope(channel="slack", conversation_id="c", message_id="Ev1", sender="u", text="hi")
    assert reply_id(envelope, 0) == reply_id(envelope, 0)
    assert reply_id(envelope, 0) != reply_id(envelope, 1)


def test_sessions_expire_after_their_ttl() -> None:
    now = [1000.0]
    store = MemorySessionStore(ttl=60, clock=lambda: now[0])
    store.save(Session(conversation_id="c", channel="test"))
    now[0] += 59
    assert store.load("c") is not None
    now[0] += 61
    assert store.load("c") is None


def test_a_number_picks_one_of_the_options_just_offered() -> None:
    from parley.core.options import chosen

    def message(text: str) -> Envelope:
        return Envelope(channel="twilio", conversation_id="c", message_id="m", sender="s", text=text)

    offered = ("Track my order", "Start a return")
    assert chosen(offered, message(" 2. ")).text == "Start a return"
    assert chosen(offered, message("1)")).text == "Track my order"
    for kept in ("3", "0", "2 please", "12", "²"):
        assert chosen(offered, message(kept)).text == kept
    assert chosen((), message("1")).text == "1"
