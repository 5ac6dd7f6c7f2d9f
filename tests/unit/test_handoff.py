"""The handoff state machine and its triggers: pure functions, read like the admin's rules."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from parley.core import handoff
from parley.core.handoff import BusinessHours, HandoffRules, InvalidTransition
from parley.core.sessions import Turn

PARIS = ZoneInfo("Europe/Paris")


def at(*args: int) -> float:
    return datetime(*args, tzinfo=PARIS).timestamp()


@pytest.mark.parametrize(("state", "action", "after"), [
    ("bot", "request", "waiting"), ("resolved", "request", "waiting"), ("waiting", "claim", "claimed"),
    ("waiting", "hand_back", "bot"), ("claimed", "hand_back", "bot"), ("waiting", "resolve", "resolved"),
    ("claimed", "resolve", "resolved"),
])
def test_allowed_transitions(state, action, after) -> None:
    assert handoff.transition(state, action) == after


@pytest.mark.parametrize(("state", "action", "message"), [
    ("waiting", "request", "cannot request a conversation that is waiting"),
    ("claimed", "claim", "cannot claim a conversation that is claimed"),
    ("bot", "resolve", "cannot resolve a conversation that is bot"),
    ("resolved", "hand_back", "cannot hand back a conversation that is resolved"),
    ("bot", "claim", "cannot claim a conversation that is bot"),
])
def test_invalid_transitions_say_what_was_attempted(state, action, message) -> None:
    with pytest.raises(InvalidTransition, match=message):
        handoff.transition(state, action)


@pytest.mark.parametrize("text", ["Can I talk to a human?", "quiero hablar con una persona",
                                  "je voudrais parler à un conseiller",
                                  "Ich möchte mit einem Mitarbeiter sprechen", "Talk to a person"])
def test_asking_for_a_person_in_four_languages_and_the_button(text: str) -> None:
    reason = handoff.asked_for_person(HandoffRules(), text, button="Talk to a person")
    assert reason == "customer asked for a person"
    assert handoff.asked_for_person(HandoffRules(on_request=False), text, button="Talk to a person") is None


def test_keywords_match_whole_words_ignoring_case_and_accents_and_only_with_a_desk() -> None:
    rules = HandoffRules(desk=True, keywords=("refund", "cancel my account", "réclamation"))
    assert handoff.asked_for_person(rules, "I want a REFUND now") == "keyword: refund"
    assert handoff.asked_for_person(rules, "please cancel  my account!") == "keyword: cancel my account"
    assert handoff.asked_for_person(rules, "une reclamation svp") == "keyword: réclamation"
    assert handoff.asked_for_person(rules, "is it refundable?") is None
    assert handoff.asked_for_person(HandoffRules(keywords=("refund",)), "refund") is None  # no desk


def test_counting_triggers_and_their_off_switches() -> None:
    rules = HandoffRules(low_confidence_after=3, engine_failures_after=2)
    assert handoff.after_low_confidence(rules, 2) is None
    assert handoff.after_low_confidence(rules, 3) == "3 answers in a row the bot was not sure of"
    assert handoff.after_engine_failures(rules, 2) == "the answer engine failed 2 times in a row"
    off = HandoffRules(low_confidence_after=None, engine_failures_after=None, on_engine_request=False)
    assert handoff.after_low_confidence(off, 99) is None
    assert handoff.after_engine_failures(off, 99) is None
    assert handoff.after_engine_request(off, "angry customer") is None
    assert handoff.after_engine_request(rules, "angry") == "the assistant asked for a person: angry"


def test_business_hours_in_the_admins_time_zone() -> None:
    hours = BusinessHours(timezone="Europe/Paris", days=(0, 1, 2, 3, 4), opens=time(9), closes=time(17))
    assert hours.is_open(at(2026, 11, 25, 9, 0))            # a Wednesday, opening minute
    assert not hours.is_open(at(2026, 11, 25, 17, 0))       # closing minute
    assert not hours.is_open(at(2026, 11, 28, 12, 0))       # Saturday noon
    assert hours.next_opening(at(2026, 11, 28, 12, 0)) == datetime(2026, 11, 30, 9, 0, tzinfo=PARIS)
    assert hours.next_opening(at(2026, 11, 25, 20, 0)) == datetime(2026, 11, 26, 9, 0, tzinfo=PARIS)
    assert hours.next_opening(at(2026, 11, 25, 7, 30)) == datetime(2026, 11, 25, 9, 0, tzinfo=PARIS)


def test_reminders_are_due_once_per_interval_and_stop_after_a_few() -> None:
    rules = HandoffRules(unclaimed_reminder_seconds=300)
    assert handoff.reminders_due(rules, 1000.0, 1299.0) == 0
    assert handoff.reminders_due(rules, 1000.0, 1300.0) == 1
    assert handoff.reminders_due(rules, 1000.0, 1000.0 + 300 * 50) == handoff.MAX_REMINDERS
    assert handoff.reminders_due(HandoffRules(unclaimed_reminder_seconds=None), 0.0, 1e9) == 0


@pytest.mark.parametrize(("text", "score"), [("5", 5), ("1", 1), ("4/5", 4), ("3 stars", 3), ("⭐⭐", 2),
                                             ("0", None), ("6", None), ("5 days ago", None), ("", None)])
def test_ratings(text: str, score: int | None) -> None:
    assert handoff.parse_rating(text) == score


def test_notes_and_masking() -> None:
    rules = HandoffRules(note_prefix="//")
    assert handoff.is_note(rules, "  // checking the order")
    assert not handoff.is_note(rules, "I'm checking your order")
    assert handoff.mask("+15551234567") == "••••4567"
    assert handoff.mask("abc") == "••••"


def test_header_shows_channel_masked_customer_reason_transcript_and_the_note_rule() -> None:
    history = (Turn(role="customer", text="where is my parcel?", at=1.0),
               Turn(role="bot", text="It ships in 2 days.", at=2.0))
    text = handoff.header(channel="sms", customer="+15551234567", reason="customer asked for a person",
                          history=history, turns=10, note_prefix="//")
    assert text.startswith("**Customer on sms** (••••4567) needs a person: customer asked for a person.")
    assert "> **Customer:** where is my parcel?" in text and "> **Bot:** It ships in 2 days." in text
    assert "Messages starting with `//` are internal notes and are not sent." in text
    assert "+15551234567" not in text
