"""Fault injection at every store call of a conversation: each run ends as it would without the fault.

A conversation (a question, a request for a person, a message relayed to the reps' thread, a rep's
claim and reply, the rep resolving it, the customer's 1-5 rating) runs through the worker's pipeline on real stores:
in-memory sessions and ledger with SQLite, and Redis with PostgreSQL. It runs once without faults
and records every store call; then once per call and per mode, with that one call failing as
``Unavailable`` (what every store raises when its server is unreachable): *before* (the call did
nothing) or *after* (it took effect, and its answer was lost). The worker retries a failed message
as the pool does. Each faulty run must end as the clean one did: the same texts sent to the customer
and to the reps, each once and in order; the same handoff steps and rating in SQL; the same state.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlmodel import Session as SqlSession

from parley.channels.base import BaseAdapter
from parley.core.dialogue import Dialogue, Policy
from parley.core.engine import Answer
from parley.core.envelope import Envelope, Reply
from parley.core.handoff import DESK, HandoffRules
from parley.core.inbox import Claim, Delivery
from parley.core.sessions import Turn
from parley.errors import Unavailable
from parley.stores.memory import MemorySendLedger, MemorySessionStore
from parley.stores.redis import RedisSendLedger, RedisSessionStore
from parley.stores.sql import Feedback, HandoffEvent, Message, SqlConversationLog, open_database
from parley.worker.pipeline import Outbox, Pipeline

POLICY = Policy(greeting="Hi!", handoff=HandoffRules(desk=True))
REDIS_URL = "redis://127.0.0.1:6379/0"
# The store calls a message's processing makes, and may fail (a ledger's confirm never raises).
FAULTY = {"sessions": ("load", "save"), "log": ("record_inbound", "replies_to", "record_replies"),
          "ledger": ("claim", "release")}


class Engine:
    name = "scripted"

    def answer(self, question: str, history: Sequence[Turn], *, on_token=None) -> Answer:  # noqa: ANN001
        return Answer(text=f"Here is how: {question}", confidence=0.9, engine=self.name)


class Channel(BaseAdapter):
    def __init__(self, name: str) -> None:
        self.name, self.sent = name, []

    def send(self, replies: Sequence[Reply], *, once=None) -> None:  # noqa: ANN001
        self.sent.extend(reply.text for reply in replies)


class Faults:
    """Counts the store calls of a run, and fails the one numbered ``at`` (before or after it ran)."""

    def __init__(self, at: int | None = None, *, after: bool = False) -> None:
        self.at, self.after, self.calls, self.failed = at, after, [], None

    def wrap(self, name: str, store: Any) -> Any:
        faults = self

        class Faulty:
            def __getattr__(self, attribute: str) -> Any:
                method = getattr(store, attribute)
                if attribute not in FAULTY[name]:
                    return method

                def call(*args: Any, **kwargs: Any) -> Any:
                    faults.calls.append(f"{name}.{attribute}")
                    failing = len(faults.calls) == faults.at
                    if failing and not faults.after:
                        faults.failed = faults.calls[-1]
                        raise Unavailable(f"injected before {faults.failed}")
                    result = method(*args, **kwargs)
                    if failing:
                        faults.failed = faults.calls[-1]
                        raise Unavailable(f"injected after {faults.failed}")
                    return result
                return call

        return Faulty()


class World:
    """One conversation's stores, channels and pipeline, with ``faults`` between them."""

    def __init__(self, backend: str, database_url: str, faults: Faults) -> None:
        self.prefix = f"parley-test-faults-{uuid.uuid4().hex[:8]}:"
        if backend == "redis":
            client = redis.Redis.from_url(REDIS_URL)
            sessions = RedisSessionStore(client, prefix=self.prefix, ttl=3600, max_turns=20, max_chars=8000)
            ledger = RedisSendLedger(client, prefix=self.prefix, ttl=3600)
        else:
            sessions, ledger = MemorySessionStore(ttl=3600), MemorySendLedger()
        self.database = open_database(database_url)
        log = SqlConversationLog(self.database)
        log.create_schema()
        self.sessions = sessions
        self.customer, self.desk = Channel("sms"), Channel(DESK)
        dialogue = Dialogue(engine=Engine(), sessions=faults.wrap("sessions", sessions), policy=POLICY,
                            events=log)
        outbox = Outbox({"sms": self.customer, DESK: self.desk}, faults.wrap("ledger", ledger))
        self.pipeline = Pipeline(dialogue=dialogue, log=faults.wrap("log", log), outbox=outbox)
        self.entries = itertools.count(1)
        self.conversation = f"c-{uuid.uuid4().hex[:8]}"

    def run(self) -> None:
        customer = dict(channel="sms", conversation_id=self.conversation, sender="+15551234567",
                        route={"to": "+15551234567"})
        rep = dict(channel=DESK, conversation_id=self.conversation, sender="U0ANA", sender_name="Ana",
                   role="agent")
        # Message ids of this world's own: worlds on PostgreSQL share one database.
        for message in (Envelope(**customer, message_id=f"{self.conversation}-SM1", text="How do I reset my password?"),
                        Envelope(**customer, message_id=f"{self.conversation}-SM2", text="I want to talk to a person"),
                        Envelope(**customer, message_id=f"{self.conversation}-SM3", text="hello, anyone there?"),
                        Envelope(**rep, message_id=f"{self.conversation}-ev1", text="", action="claim"),
                        Envelope(**rep, message_id=f"{self.conversation}-ev2", text="Hi, I'm Ana. Let me look."),
                        Envelope(**rep, message_id=f"{self.conversation}-ev3", text="", action="resolve"),
                        Envelope(**customer, message_id=f"{self.conversation}-SM4", text="5")):
            self.process(message)

    def process(self, envelope: Envelope) -> None:
        """As the worker does: an ``Unavailable`` is waited out and the message processed again."""
        claim = Claim(conversation_id=envelope.conversation_id, token="1")
        entry = str(next(self.entries))  # as the inbox numbers them: growing along the conversation
        for attempt in range(1, 6):
            try:
                return self.pipeline.process(Delivery(envelope=envelope, claim=claim, entry_id=entry, attempt=attempt))
            except Unavailable:
                continue
        raise AssertionError(f"{envelope.message_id} never got through")

    def outcome(self) -> dict[str, object]:
        with SqlSession(self.database) as sql:
            steps = list(sql.scalars(select(HandoffEvent.kind).where(HandoffEvent.conversation_id == self.conversation)
                                     .order_by(HandoffEvent.id)))
            ratings = list(sql.scalars(select(Feedback.score).where(Feedback.conversation_id == self.conversation)))
            logged = list(sql.scalars(select(Message.text).where(Message.conversation_id == self.conversation)
                                      .order_by(Message.id)))
        session = self.sessions.load(self.conversation)
        return {"customer saw": self.customer.sent, "reps saw": self.desk.sent, "handoff steps": steps,
                "ratings": ratings, "logged": logged, "state": session and session.handoff,
                "history": session and [turn.text for turn in session.history]}

    def close(self) -> None:
        self.database.dispose()


@pytest.fixture(params=["embedded", "redis"])
def world_of(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Faults], World]]:
    backend = request.param
    if backend == "redis":
        database_url = request.getfixturevalue("postgres_url").replace("postgresql://", "postgresql+psycopg://")
    worlds: list[World] = []

    def make(faults: Faults) -> World:
        url = database_url if backend == "redis" else f"sqlite:///{tmp_path / f'log-{len(worlds)}.db'}"
        worlds.append(World(backend, url, faults))
        return worlds[-1]

    yield make
    for world in worlds:
        world.close()
    if backend == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        for world in worlds:
            keys = list(client.scan_iter(f"{world.prefix}*"))
            if keys:
                client.delete(*keys)


def test_one_store_failure_anywhere_changes_nothing_the_customer_or_the_reps_see(
        world_of: Callable[[Faults], World]) -> None:
    clean = Faults()
    baseline = world_of(clean)
    baseline.run()
    expected = baseline.outcome()
    # The conversation goes through every step, so every kind of store call is failed somewhere.
    assert expected["handoff steps"] == ["requested", "claimed", "first_reply", "resolved", "rating"]
    assert expected["ratings"] == [5] and expected["state"] == "resolved"
    assert "hello, anyone there?" in expected["reps saw"]
    assert "Hi, I'm Ana. Let me look." in expected["customer saw"]

    differences = []
    for at, after in itertools.product(range(1, len(clean.calls) + 1), (False, True)):
        faults = Faults(at, after=after)
        world = world_of(faults)
        world.run()
        if (got := world.outcome()) != expected:
            differences.append((faults.failed, "after" if after else "before",
                                {key: got[key] for key in got if got[key] != expected[key]}))
    print(f"{len(clean.calls)} store calls, {2 * len(clean.calls)} runs with one fault each: "
          f"{len(differences)} ended differently")
    assert differences == []
