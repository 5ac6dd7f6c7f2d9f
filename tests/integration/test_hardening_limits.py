"""Flood control on the webhook channels: per sender and per conversation, in process or in Redis.

A flooding customer gets their first messages answered, one polite notice, and nothing more until
the window passes; another customer writing during the flood is answered as usual. The widget's
429 with Retry-After is shown in test_widget_embedding.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import redis
import structlog
from flask import Flask
from flask.testing import FlaskClient
from redis.client import Monitor
from twilio.request_validator import RequestValidator

from parley.core.dialogue import FLOOD_NOTICE
from parley.core.envelope import Envelope
from parley.core.ratelimit import FloodGate, Window
from parley.stores.ratelimit import LimitsRateLimiter, RedisFloodGate
from parley.webhooks.throttle import SenderLimits
from parley.webhooks.app import create_app
from parley.stores.redis import connect
from parley.wiring import flood_gate_of
from tests.conftest import make_settings
from tests.integration.conftest import url_of
from tests.integration.redis_processes import delete_prefix, wait_until
from tests.stubs.server import StubServer, serving, twilio_api

ACCOUNT_SID, AUTH_TOKEN = "ACfake0000000000000000000000000077", "hardening-twilio-token-0123456789"
FLOODER, CALM, SHOP = "+12125550001", "+12125550002", "+14155550100"
PER_SENDER = 3


@pytest.fixture
def twilio() -> Iterator[StubServer]:
    with serving(twilio_api()) as server:
        yield server


@pytest.fixture(params=["memory", "redis", "cluster"])
def app(request: pytest.FixtureRequest, tmp_path: Path, twilio: StubServer) -> Iterator[Flask]:
    url = None if request.param == "memory" else url_of(request, request.param)
    environ = {"REDIS_URL": url} if url else {}
    base = make_settings(tmp_path, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                         TWILIO_API_URL=twilio.url, **environ)
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    settings = base.model_copy(update={
        "limits": base.limits.model_copy(update={"messages_per_minute_per_sender": PER_SENDER}),
        "storage": base.storage.model_copy(update={"key_prefix": prefix})})
    app = create_app(settings)
    yield app
    app.extensions["parley"].close()
    if url:
        delete_prefix(connect(url), prefix)


def sms(client: FlaskClient, sender: str, text: str, sid: str | None = None) -> int:
    form = {"From": sender, "To": SHOP, "Body": text, "MessageSid": sid or f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID, "NumMedia": "0"}
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/twilio/messages", form)
    return client.post("/twilio/messages", data=urlencode(form), content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature}).status_code


def test_a_flood_gets_one_notice_then_is_dropped_and_others_are_still_answered(
        app: Flask, twilio: StubServer) -> None:
    client = app.test_client()
    with structlog.testing.capture_logs() as logs:
        statuses = [sms(client, FLOODER, f"question {n}") for n in range(12)]
        statuses.append(sms(client, CALM, "How do I reset my password?"))
    assert statuses == [200] * 13  # every webhook acknowledged: a refusal would only be retried
    sent = twilio.settle("Messages.json", quiet=1.0, at_least=PER_SENDER + 2)
    to_flooder = [call.params["Body"] for call in sent if call.params["To"] == FLOODER]
    to_calm = [call.params["Body"] for call in sent if call.params["To"] == CALM]
    assert len(to_flooder) == PER_SENDER + 1
    assert to_flooder.count(FLOOD_NOTICE) == 1 and FLOOD_NOTICE not in to_flooder[:PER_SENDER]
    assert len(to_calm) == 1 and "password" in to_calm[0].lower()
    dropped = [e for e in logs if e["event"] == "envelope_dropped_over_limit"]
    assert len(dropped) == 12 - PER_SENDER - 1
    # Dropped messages never reached the inbox or the log: the transcript holds what was answered.
    transcript = app.extensions["parley"].log.transcript(f"twilio:{FLOODER}:{SHOP}", "twilio")
    assert transcript is not None
    assert [m.text for m in transcript if m.direction == "in"] == [f"question {n}" for n in range(PER_SENDER + 1)]


def test_a_platforms_retries_do_not_count_against_the_customer(app: Flask, twilio: StubServer) -> None:
    # Our ack was slow (or a 503): the platform sends the same message again, up to three times.
    # Counted each time, they would use up the customer's minute, and their next questions would be
    # dropped as a flood; a retry is the same message, whatever the limits say.
    client = app.test_client()
    for attempt in range(4):
        assert sms(client, FLOODER, "where is my order?", sid="SM0RETRIED0000000000000000000001") == 200
    for n in range(PER_SENDER - 1):
        assert sms(client, FLOODER, f"and question {n}?") == 200
    sent = twilio.settle("Messages.json", quiet=1.0, at_least=PER_SENDER)
    bodies = [call.params["Body"] for call in sent if call.params["To"] == FLOODER]
    assert len(bodies) == PER_SENDER and FLOOD_NOTICE not in bodies
    transcript = app.extensions["parley"].log.transcript(f"twilio:{FLOODER}:{SHOP}", "twilio")
    assert transcript is not None
    assert [m.text for m in transcript if m.direction == "in"] == [
        "where is my order?", *(f"and question {n}?" for n in range(PER_SENDER - 1))]


@pytest.fixture(params=["memory", "redis", "cluster"])
def gate(request: pytest.FixtureRequest) -> Iterator[FloodGate]:
    """The flood gate each deployment gets (flood_gate_of): the limiter's steps in process and on a
    cluster, one script on one Redis."""
    if request.param == "memory":
        yield flood_gate_of(make_settings(Path("/nonexistent")), LimitsRateLimiter("memory://"))
        return
    url, prefix = url_of(request, request.param), f"parley-test-{uuid.uuid4().hex[:8]}:"
    base = make_settings(Path("/nonexistent"), REDIS_URL=url)
    settings = base.model_copy(update={"storage": base.storage.model_copy(update={"key_prefix": prefix})})
    made = flood_gate_of(settings, LimitsRateLimiter(url, key_prefix=f"{prefix}ratelimit"))
    assert isinstance(made, RedisFloodGate) == (request.param == "redis")
    yield made
    delete_prefix(connect(url), prefix)


def test_a_conversation_is_limited_whoever_writes_in_it(gate: FloodGate) -> None:
    limits = SenderLimits(gate=gate, per_sender=100, per_conversation=4)

    def message(sender: str) -> Envelope:
        return Envelope(channel="slack", conversation_id="slack:T1:C1:1700000000.1", message_id=uuid.uuid4().hex,
                        sender=sender, text="hello")

    verdicts = [limits.judge(message(f"U{n % 3}")) for n in range(8)]
    assert verdicts[:4] == ["allow"] * 4
    assert verdicts[4:] == ["notify", "notify", "notify", "drop"]  # once per sender (three people)


def test_reps_and_the_widget_are_not_counted(gate: FloodGate) -> None:
    limits = SenderLimits(gate=gate, per_sender=1, per_conversation=1)
    rep = Envelope(channel="desk", conversation_id="c", message_id="m", sender="U0REP", text="", role="agent")
    browser = Envelope(channel="widget", conversation_id="w12345678", message_id="m", sender="w12345678", text="x")
    assert {limits.judge(rep) for _ in range(5)} == {"allow"}
    assert {limits.judge(browser) for _ in range(5)} == {"allow"}  # the widget answers 429 itself


def test_a_window_counts_each_message_once_and_frees_up_as_it_moves(gate: FloodGate) -> None:
    run = uuid.uuid4().hex[:8]
    windows = (Window(f"sender:{run}", 2, 1), Window(f"conversation:{run}", 10, 1))

    def count(message: str) -> str:
        return gate.count(f"message:{run}:{message}", windows, notice_key=f"notice:{run}", retry_seconds=60)

    assert [count("a"), count("a"), count("b")] == ["allow", "allow", "allow"]  # "a" twice: a retry
    assert [count("c"), count("d"), count("c")] == ["notify", "drop", "allow"]  # "c" again: judged already
    time.sleep(1.2)  # the one-second windows have moved past every message
    assert [count("e"), count("f"), count("g")] == ["allow", "allow", "notify"]


def test_on_one_redis_each_ack_counts_and_stores_in_one_round_trip(
        request: pytest.FixtureRequest, tmp_path: Path, twilio: StubServer) -> None:
    # Counted, then stored, each message cost its ack two trips to the same Redis (the p99 of acks
    # at 1,000/s went from ~14 ms to 50-220 ms for the count alone: bench/inbox.py).
    url, prefix = url_of(request, "redis"), f"parley-test-{uuid.uuid4().hex[:8]}:"
    base = make_settings(tmp_path, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                         TWILIO_API_URL=twilio.url, REDIS_URL=url)
    settings = base.model_copy(update={
        "limits": base.limits.model_copy(update={"messages_per_minute_per_sender": PER_SENDER}),
        "storage": base.storage.model_copy(update={"key_prefix": prefix})})
    app = create_app(settings, start_workers=False)  # the acks' commands alone
    client = app.test_client()
    assert sms(client, CALM, "hello") == 200  # the script is in Redis's cache now (no NOSCRIPT retry)
    seen: list[str] = []
    sentinel = f"ECHO {prefix}done"
    with connect(url).monitor() as monitor:
        threading.Thread(target=record_commands, args=(monitor, seen), daemon=True).start()
        statuses = [sms(client, FLOODER, f"question {n}", sid=f"SM{n:032d}") for n in range(PER_SENDER + 3)]
        connect(url).echo(f"{prefix}done")  # everything before it has reached the monitor once it does
        wait_until(lambda: any(command == sentinel for command in seen), timeout=10, what="the monitor caught up")
    ours = [command for command in seen if prefix in command and command != sentinel]
    assert statuses == [200] * (PER_SENDER + 3)
    assert len(ours) == PER_SENDER + 3, ours  # allowed, notified and dropped alike: one script each
    # Slack retries a slow ack, and a flood slows acks: the retry of a dropped message stays dropped.
    assert sms(client, FLOODER, "question 5", sid=f"SM{5:032d}") == 200
    queued = app.extensions["parley"].inbox.status()["queued"]
    app.extensions["parley"].close()
    delete_prefix(connect(url), prefix)
    assert queued == 1 + PER_SENDER + 1  # the calm one, the flood's first ones and its notice


def record_commands(monitor: Monitor, seen: list[str]) -> None:
    """The commands clients send (not those a script runs), until the monitor is closed."""
    with contextlib.suppress(redis.ConnectionError, ValueError):  # closed
        seen.extend(entry["command"] for entry in monitor.listen() if entry.get("client_type") != "lua")
