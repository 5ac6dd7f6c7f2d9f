"""A message retried after a failure part-way (the log, a post to the reps' thread) is answered as
if nothing had failed: the dialogue runs once, every reply goes out once, the customer sees only
their own conversation. Also: a flood's notice never speaks over a person who has the conversation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session as SqlSession

from parley.channels.base import BaseAdapter
from parley.core.desk import DeskPost
from parley.core.dialogue import FLOOD_NOTICE, Dialogue, Policy
from parley.core.engine import Answer
from parley.core.envelope import Envelope, Reply
from parley.core.handoff import DESK, HandoffRules
from parley.core.inbox import Claim, Delivery
from parley.core.sessions import Turn
from parley.data import labels
from parley.data.export import ExportQuery, rows
from parley.errors import LostClaim, Unavailable, UpstreamError
from parley.worker.pipeline import Outbox, Pipeline
from parley.stores.memory import MemorySendLedger, MemorySessionStore
from parley.stores.sql import HandoffEvent, SqlConversationLog, open_database
from parley.webhooks.throttle import throttled

POLICY = Policy(greeting="Hi!", handoff=HandoffRules(desk=True))
CLAIM = Claim(conversation_id="c1", token="1")


class CountingEngine:
    name = "counting"

    def __init__(self) -> None:
        self.questions: list[str] = []
        self.histories: list[list[str]] = []

    def answer(self, question: str, history: Sequence[Turn], *, on_token=None) -> Answer:  # noqa: ANN001
        self.questions.append(question)
        self.histories.append([turn.text for turn in history])
        return Answer(text=f"Here is how: {question}", confidence=0.9, engine=self.name)


class Channel(BaseAdapter):
    """An adapter that records what it sent, and whose first ``failures`` sends fail."""

    def __init__(self, name: str, *, failures: int = 0) -> None:
        self.name, self.failures, self.sent = name, failures, []

    def send(self, replies: Sequence[Reply], *, once=None) -> None:  # noqa: ANN001
        if self.failures:
            self.failures -= 1
            raise UpstreamError("the platform answered 503")
        self.sent.extend(replies)

    @property
    def texts(self) -> list[str]:
        return [reply.text for reply in self.sent]


class Blip:
    """The database drops the connection once, on the first write of a message's replies."""

    def __init__(self, engine: Engine) -> None:
        self.armed = False
        event.listen(engine, "before_cursor_execute", self._maybe_fail)

    def _maybe_fail(self, connection, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if self.armed and statement.lstrip().upper().startswith("INSERT INTO MESSAGE") \
                and "'out'" in repr(parameters):
            self.armed = False
            # What SQLAlchemy raises when the driver loses the connection mid-statement.
            lost = connection.dialect.loaded_dbapi.OperationalError("server closed the connection")
            raise OperationalError(statement, parameters, lost)


class World:
    def __init__(self, engine: Engine, *, desk_failures: int = 0) -> None:
        self.engine = engine
        self.log = SqlConversationLog(engine)
        self.log.create_schema()
        self.blip = Blip(engine)
        self.answers = CountingEngine()
        self.sessions = MemorySessionStore(ttl=3600)
        self.customer, self.desk = Channel("sms"), Channel(DESK, failures=desk_failures)
        dialogue = Dialogue(engine=self.answers, sessions=self.sessions, policy=POLICY, events=self.log)
        self.pipeline = Pipeline(dialogue=dialogue, log=self.log,
                                 outbox=Outbox({"sms": self.customer, DESK: self.desk}, MemorySendLedger()))
        self.ids = itertools.count()
        self.entries = itertools.count(1)

    def envelope(self, text: str) -> Envelope:
        return Envelope(channel="sms", conversation_id="c1", message_id=f"SM{next(self.ids)}",
                        sender="+15551234567", text=text, route={"to": "+15551234567"})

    def process(self, envelope: Envelope, *, attempts: int = 1) -> None:
        """Process like the worker: a failed attempt leaves the message for the next one."""
        entry = str(next(self.entries))  # as the inbox numbers them: growing along the conversation
        for attempt in range(1, attempts + 1):
            try:
                self.pipeline.process(Delivery(envelope=envelope, claim=CLAIM, entry_id=entry,
                                               attempt=attempt))
                return
            except (Unavailable, UpstreamError):
                if attempt == attempts:
                    raise

    def handoff_events(self) -> list[str]:
        with SqlSession(self.engine) as session:
            return list(session.scalars(select(HandoffEvent.kind)))


@pytest.fixture
def engine(database: dict[str, str], tmp_path: Path) -> Engine:
    url = database.get("DATABASE_URL")
    url = url.replace("postgresql://", "postgresql+psycopg://") if url else f"sqlite:///{tmp_path}/log.db"
    engine = open_database(url)
    yield engine
    engine.dispose()


def test_a_handoff_retried_after_the_log_failed_opens_one_thread_and_answers_once(engine: Engine) -> None:
    world = World(engine)
    world.blip.armed = True

    world.process(world.envelope("talk to a person"), attempts=2)

    assert not world.blip.armed, "the database never failed: the test proves nothing"
    assert world.customer.texts == [POLICY.handoff_requested]
    [header] = world.desk.sent
    assert header.desk is not None and header.desk.kind == "open" and "needs a person" in header.text
    session = world.sessions.load("c1")
    assert [turn.role for turn in session.history] == ["customer", "bot"]
    assert session.handoffs == 1 and session.handoff == "waiting"
    assert world.handoff_events() == ["requested"]


def test_an_answer_retried_after_the_log_failed_is_decided_again_from_the_same_state(engine: Engine) -> None:
    world = World(engine)
    world.process(world.envelope("hello"))
    world.blip.armed = True

    world.process(world.envelope("How do I reset my password?"), attempts=2)

    # Nothing was kept from the failed attempt: the retry asks with the history the message found
    # (an answer whose log failed cannot be replayed, so the engine is asked again), and the
    # conversation holds the exchange once.
    assert world.answers.histories == [["hello", "Hi!"], ["hello", "Hi!"]]
    assert world.customer.texts == ["Hi!", "Here is how: How do I reset my password?"]
    assert [turn.text for turn in world.sessions.load("c1").history] == [
        "hello", "Hi!", "How do I reset my password?", "Here is how: How do I reset my password?"]


def test_a_post_to_the_reps_thread_that_failed_is_posted_on_the_retry(engine: Engine) -> None:
    world = World(engine, desk_failures=1)
    envelope = world.envelope("talk to a person")

    world.process(envelope, attempts=2)

    assert world.customer.texts == [POLICY.handoff_requested]  # once, though the message ran twice
    [header] = world.desk.sent
    assert "needs a person" in header.text
    header_post = DeskPost(kind="open", handoff=1, customer_channel="sms")
    assert (dict(header.route), header.desk) == ({}, header_post)
    # Replayed from the log in order, each to its own place.
    replayed = world.log.replies_to(envelope)
    assert [(reply.channel, dict(reply.route), reply.desk) for reply in replayed] == [
        ("sms", {"to": "+15551234567"}, None), (DESK, {}, header_post)]


def test_posts_to_the_reps_thread_stay_out_of_the_customers_and_the_data_scientists_view(engine: Engine) -> None:
    world = World(engine)
    question = world.envelope("How do I reset my password?")
    world.process(question)
    world.process(world.envelope("talk to a person"))
    world.process(world.envelope("I am still here"))  # relayed to the reps' thread
    assert len(world.desk.sent) == 2

    transcript = world.log.transcript("c1", "sms")
    assert [message.text for message in transcript] == [
        "How do I reset my password?", "Here is how: How do I reset my password?",
        "talk to a person", POLICY.handoff_requested, "I am still here"]
    exported = [row["text"] for row in rows(engine, ExportQuery(), None)]
    assert exported == [message.text for message in transcript]
    suggested = [item.text for item in labels.suggest(engine)]
    assert sorted(suggested) == ["How do I reset my password?", "talk to a person"]


def test_a_flood_notice_is_relayed_to_the_person_not_answered_by_the_bot(engine: Engine) -> None:
    world = World(engine)
    world.process(world.envelope("talk to a person"))

    world.process(throttled(world.envelope("hello?? anyone??")))

    assert FLOOD_NOTICE not in world.customer.texts
    assert world.desk.texts[-1] == "hello?? anyone??"
    assert world.sessions.load("c1").history[-1].text == "hello?? anyone??"


def test_a_flood_notice_is_sent_when_the_bot_has_the_conversation(engine: Engine) -> None:
    world = World(engine)

    world.process(throttled(world.envelope("spam spam spam")))

    assert world.customer.texts == [FLOOD_NOTICE]
    assert world.answers.questions == [] and world.desk.sent == []


class Overtaken(CountingEngine):
    """An engine whose worker is overtaken mid-answer: a second worker answers the same message
    (it took over a lapsed claim) and logs its reply, but its send fails; then this one goes on."""

    def __init__(self, overtake) -> None:  # noqa: ANN001 - the second worker's attempt
        super().__init__()
        self.overtake = overtake

    def answer(self, question: str, history: Sequence[Turn], *, on_token=None) -> Answer:  # noqa: ANN001
        self.overtake()
        return Answer(text=f"A stale answer to: {question}", confidence=0.9, engine=self.name)


def test_a_worker_overtaken_by_another_neither_keeps_its_state_nor_sends(engine: Engine) -> None:
    world = World(engine, desk_failures=0)
    question = world.envelope("How do I reset my password?")
    failing_customer = Channel("sms", failures=1)
    second = Pipeline(dialogue=Dialogue(engine=CountingEngine(), sessions=world.sessions, policy=POLICY),
                      log=world.log, outbox=Outbox({"sms": failing_customer}, world.pipeline.outbox.ledger))

    def second_worker() -> None:
        with pytest.raises(UpstreamError):  # kept its state, logged its answer, then the platform failed
            second.process(Delivery(envelope=question, claim=CLAIM, entry_id="7", attempt=2))

    stale = Pipeline(dialogue=Dialogue(engine=Overtaken(second_worker), sessions=world.sessions, policy=POLICY),
                     log=world.log, outbox=world.pipeline.outbox)
    with pytest.raises(LostClaim):  # its take (7, 1) is older than the state's (7, 2): fenced off
        stale.process(Delivery(envelope=question, claim=CLAIM, entry_id="7", attempt=1))

    logged = [reply.text for reply in world.log.replies_to(question)]
    assert logged == ["Here is how: How do I reset my password?"]
    assert world.customer.texts == [] and failing_customer.texts == []
    assert world.sessions.load("c1").history[-1].text == logged[0], "the new holder's state stands"
    second.process(Delivery(envelope=question, claim=CLAIM, entry_id="7", attempt=3))  # its retry
    assert failing_customer.texts == logged  # the logged text, once; never the stale one
