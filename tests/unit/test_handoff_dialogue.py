"""The dialogue during a handoff, without IO: the bot stays muted, reps' actions move the state."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from parley.core.dialogue import Dialogue, Policy
from parley.core.engine import Answer
from parley.core.envelope import Attachment, Envelope, Reply
from parley.core.handoff import DESK, BusinessHours, HandoffRules
from parley.core.sessions import Turn
from parley.stores.memory import MemorySessionStore
from tests.conftest import make_envelope


class ScriptedEngine:
    """Answers confidently, or fails, or is unsure, as the test says; counts its calls."""

    name = "scripted"

    def __init__(self) -> None:
        self.calls = 0
        self.mode = "ok"

    def answer(self, question: str, history: Sequence[Turn], *, on_token=None) -> Answer:  # noqa: ANN001
        self.calls += 1
        if self.mode == "fail":
            raise ConnectionError("API down")
        if self.mode == "unsure":
            return Answer(text="", confidence=0.0, engine=self.name)
        return Answer(text=f"bot answer to {question}", confidence=0.9, engine=self.name)


class Events:
    def __init__(self) -> None:
        self.kinds: list[tuple[str, str | None, str | None]] = []
        self.feedback: list[tuple[str, int, str]] = []

    def record_handoff_event(self, *, conversation_id: str, kind: str, reason: str | None = None,
                             actor: str | None = None) -> None:
        self.kinds.append((kind, reason, actor))

    def record_feedback(self, *, conversation_id: str, channel: str, message_id: str, score: int,
                        comment: str | None = None, kind: str = "answer") -> bool:
        self.feedback.append((message_id, score, kind))
        return True


class Desk:
    """A conversation on SMS with the reps' desk, read like a transcript."""

    def __init__(self, rules: HandoffRules, *, now: float = 1_700_000_000.0) -> None:
        self.engine, self.events = ScriptedEngine(), Events()
        self.now = now
        self.dialogue = Dialogue(engine=self.engine, sessions=MemorySessionStore(ttl=3600),
                                 events=self.events, policy=Policy(greeting="Hi!", handoff=rules),
                                 clock=lambda: self.now)
        self.ids = itertools.count()

    def customer(self, text: str) -> list[Reply]:
        return self.dialogue.handle(make_envelope(text, channel="sms", conversation_id="c1",
                                                  sender="+15551234567", route={"to": "+15551234567"}))

    def rep(self, text: str = "", action: str | None = None, name: str = "Ana") -> list[Reply]:
        return self.dialogue.handle(Envelope(channel=DESK, conversation_id="c1",
                                             message_id=f"ev{next(self.ids)}", sender="U0ANA",
                                             sender_name=name, text=text, role="agent", action=action))

    def recheck(self) -> list[Reply]:
        return self.dialogue.handle(Envelope(channel="system", conversation_id="c1",
                                             message_id=f"r{next(self.ids)}", sender="parley", text="",
                                             role="system", action="remind", timestamp=self.now))

    @property
    def session(self):  # noqa: ANN201
        return self.dialogue.sessions.load("c1")


def seen(replies: list[Reply]) -> list[tuple[str, str]]:
    return [(reply.channel, reply.text) for reply in replies]


@pytest.fixture
def desk() -> Desk:
    return Desk(HandoffRules(desk=True, unclaimed_reminder_seconds=300))


def test_a_whole_handoff_from_request_to_rating(desk: Desk) -> None:
    desk.customer("where is my parcel?")
    asked = desk.customer("I want to talk to a human")
    assert [r.channel for r in asked] == ["sms", DESK]
    assert "let our support team know" in asked[0].text
    header = asked[1]
    assert header.desk is not None and header.desk.kind == "open" and "••••4567" in header.text
    assert "where is my parcel?" in header.text
    assert desk.session.handoff == "waiting"

    relayed = desk.customer("it was due Monday")
    assert seen(relayed) == [(DESK, "it was due Monday")]
    calls = desk.engine.calls

    first = desk.rep("Hi, I'm looking at your order now")
    # The first reply claims: the thread's header is to show it (a refresh, nothing posted).
    assert seen(first) == [("sms", "Hi, I'm looking at your order now"), (DESK, "")]
    assert first[1].desk is not None and first[1].desk.kind == "header"
    assert first[0].author == "Ana" and first[0].route == {"to": "+15551234567"}
    assert desk.session.handoff == "claimed" and desk.session.claimed_by == "Ana"

    assert desk.rep("// customer is VIP, be nice") == []
    assert seen(desk.customer("thanks, and can you refund the shipping?")) == [
        (DESK, "thanks, and can you refund the shipping?")]
    assert desk.engine.calls == calls  # muted: the engine was never asked while a person had it

    resolved = desk.rep(action="resolve")
    assert resolved[0].quick_replies == ("1", "2", "3", "4", "5") and "rate" in resolved[0].text
    assert desk.session.handoff == "resolved"
    rated = desk.customer("5")
    assert seen(rated) == [("sms", "Thank you for your rating!"), (DESK, "The customer rated the help 5/5.")]
    assert desk.events.feedback == [(resolved[0].reply_id, 5, "handoff")]
    kinds = [kind for kind, _, _ in desk.events.kinds]
    assert kinds == ["requested", "claimed", "first_reply", "resolved", "rating"]
    assert desk.customer("how long does delivery take?")[0].text.startswith("bot answer")


def test_a_second_request_while_waiting_opens_no_second_thread(desk: Desk) -> None:
    desk.customer("agent please")
    again = desk.customer("hello?? I asked for a real person")
    assert [r.desk.kind if r.desk else None for r in again if r.channel == DESK] == ["customer"]
    assert [r.text for r in again if r.channel == "sms"] == [
        "Your request is already with our support team; a person will reply here."]
    assert desk.session.handoffs == 1


def test_claim_button_then_hand_back_resumes_the_bot(desk: Desk) -> None:
    desk.customer("speak to an agent")
    claimed = desk.rep(action="claim", name="Bo")
    assert seen(claimed) == [("sms", "Bo from our support team has joined the conversation."),
                             (DESK, "Claimed by Bo.")]
    twice = desk.rep(action="claim", name="Cy")
    assert seen(twice) == [(DESK, "Already done by Bo: cannot claim a conversation that is claimed.")]
    back = desk.rep(action="hand_back", name="Bo")
    assert back[0].text.startswith("You're back with the assistant")
    assert desk.session.handoff == "bot"
    assert desk.customer("where is my order")[0].text == "bot answer to where is my order"
    late = desk.rep("one more thing")
    assert seen(late)[0][0] == DESK
    assert late[0].text.startswith("Not sent: this conversation is back with the bot")


def test_rep_names_can_be_hidden_from_customers() -> None:
    desk = Desk(HandoffRules(desk=True, show_rep_names=False))
    desk.customer("talk to a person")
    reply, header = desk.rep("Hello!")
    assert reply.author == "Support team" and header.desk is not None and header.desk.kind == "header"


PHOTO = Attachment(content_type="image/png", name="label.png", size=2048, origin=DESK,
                   ref="https://files.slack.com/files-pri/T1-F1/label.png")


def test_a_rep_attachment_slack_keeps_no_file_of_is_not_relayed_and_the_rep_is_told(desk: Desk) -> None:
    desk.customer("talk to a person")
    replies = desk.dialogue.handle(Envelope(channel=DESK, conversation_id="c1", message_id="f1",
                                            sender="U0ANA", sender_name="Ana", text="",
                                            attachments=(Attachment(content_type="image/png"),), role="agent"))
    assert seen(replies) == [(DESK, "Not sent to the customer: an attachment Slack does not let Parley fetch; "
                                    "paste its text or a link instead.")]


def test_a_reps_file_goes_to_the_customer_after_the_text_in_a_reply_of_its_own(desk: Desk) -> None:
    desk.customer("talk to a person")
    replies = desk.dialogue.handle(Envelope(channel=DESK, conversation_id="c1", message_id="f2",
                                            sender="U0ANA", sender_name="Ana", text="Here is the label",
                                            attachments=(PHOTO,), role="agent"))
    to_customer = [reply for reply in replies if reply.channel == "sms"]
    assert [(reply.text, reply.files, reply.author) for reply in to_customer] == [
        ("Here is the label", (), "Ana"), ("", (PHOTO,), "Ana")]
    assert len({reply.reply_id for reply in replies}) == len(replies)


def test_a_customers_file_while_handed_off_goes_to_the_thread(desk: Desk) -> None:
    desk.customer("talk to a person")
    photo = Attachment(content_type="image/jpeg", name="", size=48210, origin="sms", ref="https://api.twilio.com/m")
    replies = desk.dialogue.handle(make_envelope("", channel="sms", conversation_id="c1", attachments=(photo,)))
    assert [(reply.channel, reply.text, reply.files) for reply in replies] == [
        (DESK, "[sent 1 attachment(s)]", ()), (DESK, "", (photo,))]


def test_low_confidence_streak_hands_off() -> None:
    desk = Desk(HandoffRules(desk=True, low_confidence_after=2))
    desk.engine.mode = "unsure"
    assert "not sure" in desk.customer("blorp?")[0].text
    handed = desk.customer("zzzz?")
    assert [r.channel for r in handed] == ["sms", DESK]
    assert "2 answers in a row" in handed[1].text
    assert desk.session.handoff == "waiting"


def test_an_engine_that_keeps_failing_hands_off_instead_of_leaving_the_customer_in_limbo() -> None:
    desk = Desk(HandoffRules(desk=True, engine_failures_after=2))
    desk.engine.mode = "fail"
    assert desk.customer("where is my order")[0].text.startswith("Sorry, I'm having trouble")
    handed = desk.customer("hello?")
    assert "failed 2 times" in handed[1].text and desk.session.handoff == "waiting"


def test_without_a_desk_a_request_is_recorded_and_the_bot_goes_on() -> None:
    desk = Desk(HandoffRules(desk=False, keywords=("refund",)))
    # Nobody would reply in the chat, so the customer is not told someone will.
    [(channel, told)] = seen(desk.customer("talk to a human"))
    assert (channel, told) == ("sms", desk.dialogue.policy.handoff_unavailable)
    assert "reply here" not in told and "can't put you through to a person" in told
    assert desk.session.handoff == "bot" and desk.session.handoff_requested_at is not None
    assert desk.customer("refund")[0].text == "bot answer to refund"
    assert [kind for kind, _, _ in desk.events.kinds] == ["requested"]


def test_outside_business_hours_the_customer_is_told_when_people_are_back() -> None:
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    hours = BusinessHours(timezone="Europe/Paris", opens=time(9), closes=time(17))
    desk = Desk(HandoffRules(desk=True, hours=hours), now=saturday)
    told, header = desk.customer("talk to a person")
    assert told.text == ("Our support team is away right now and back on Monday at 09:00 (CET). "
                         "Your request stays open, and a person will reply here then.")
    assert "Outside business hours" in header.text and desk.session.handoff == "waiting"


def test_an_unclaimed_request_reminds_the_customer_once_per_interval(desk: Desk) -> None:
    desk.customer("talk to a person")
    assert desk.recheck() == []  # not due yet
    desk.now += 301
    reminded = desk.recheck()
    assert [r.channel for r in reminded] == ["sms", DESK]
    assert "usually replies within about 15 minutes" in reminded[0].text
    assert desk.recheck() == []  # the same reminder is never sent twice
    desk.rep(action="claim")
    desk.now += 3000
    assert desk.recheck() == []


def test_a_file_sent_with_the_request_for_a_person_follows_the_threads_header(desk: Desk) -> None:
    photo = Attachment(content_type="image/jpeg", name="broken.jpg", size=900, origin="sms", ref="https://x/m")
    replies = desk.dialogue.handle(make_envelope("I want to talk to a person", channel="sms", conversation_id="c1",
                                                 attachments=(photo,)))
    to_desk = [(reply.desk.kind if reply.desk else None, reply.files) for reply in replies if reply.channel == DESK]
    assert to_desk == [("open", ()), ("customer", (photo,))]


def test_a_reps_file_goes_and_an_attachment_slack_keeps_no_file_of_is_named(desk: Desk) -> None:
    desk.customer("talk to a person")
    post = Attachment(content_type="application/vnd.slack-docs")  # a Slack post: no file to fetch
    replies = desk.dialogue.handle(Envelope(channel=DESK, conversation_id="c1", message_id="f3", sender="U0ANA",
                                            sender_name="Ana", text="", attachments=(PHOTO, post), role="agent"))
    assert [(reply.channel, reply.files) for reply in replies if reply.files] == [("sms", (PHOTO,))]
    assert any("an attachment Slack does not let Parley fetch" in reply.text for reply in replies
               if reply.channel == DESK)
