"""Several real Parley processes sharing Redis and PostgreSQL behave as one bot.

Customers write through signed Slack Events API deliveries (and the widget); what they receive is
what the loopback Slack stub recorded from the official slack_sdk client.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
import requests

from parley.stores.redis import RedisSessionStore, connect
from parley.stores.redis_topology import Client
from tests.integration.conftest import url_of
from tests.integration.redis_processes import (
    Parley, RedisServer, delete_prefix, parley_env, post_slack, postgres_database, serve,
    slack_event, wait_until, write_config,
)
from tests.stubs.server import StubServer, serving, slack_api

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]

# Questions whose answers each cite one distinct article, so the stub's record shows which message
# an answer belongs to ("Source: <title>").
QUESTIONS = [
    "Why is my account locked?",
    "How do I change the email address on my account?",
    "How do I delete my Acme account?",
    "Do I need an account to place an order?",
    "How do I reset my password?",
    "How do I turn on two-factor authentication?",
    "How do I stop promotional emails?",
    "How do I change my name or phone number?",
    "How do I cancel my Acme Plus membership?",
    "How do I get an invoice for my order?",
]
_SOURCE = re.compile(r"Source: (?:<[^|>]+\|)?([^<>]+)>?$")  # "<url|title>" when the article has a URL


@dataclass
class Cluster:
    redis_url: str  # one Redis or a Redis Cluster: the processes are told by REDIS_URL alone
    urls: list[str]
    stub: StubServer
    prefix: str
    database_url: str
    env: dict[str, str]
    directory: Path


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    with serving(slack_api) as server:
        yield server


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.fixture(scope="module", params=["redis", "cluster"])
def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, stub: StubServer,
            database_url: str) -> Iterator[Cluster]:
    """Two `parley serve` processes (web and workers each) on one Redis key prefix and one database,
    on one Redis and then on the Redis Cluster."""
    redis_url = url_of(request, request.param)
    directory = tmp_path_factory.mktemp("cluster")
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    config = write_config(directory, key_prefix=prefix, visibility_timeout_seconds=2)
    env = parley_env(config, directory / "var", REDIS_URL=redis_url, DATABASE_URL=database_url,
                     SLACK_API_URL=stub.url, PARLEY_WIDGET_ORIGINS="")
    servers: list[Parley] = []
    urls: list[str] = []
    try:
        for name in ("a", "b"):  # one after the other: the first creates the schema
            url, server = serve(env, directory / f"{name}.log")
            servers.append(server)
            urls.append(url)
        yield Cluster(redis_url, urls, stub, prefix, database_url, env, directory)
    finally:
        for server in servers:
            server.terminate()  # both at once: each takes a moment to finish its in-flight work
        for server in servers:
            server.stop()
        delete_prefix(connect(redis_url), prefix)


def answered_sources(stub: StubServer, channel: str, since: int = 0) -> list[str]:
    """The article each message posted to a Slack channel cited, in the order they were posted
    (from the ``since``-th post on: the module's stub serves the runs on each Redis in turn)."""
    posts = [call for call in stub.to("chat.postMessage")[since:] if call.params.get("channel") == channel]
    return [_SOURCE.search(call.params["text"]).group(1) for call in posts]  # type: ignore[union-attr]


def test_a_conversation_started_on_one_process_continues_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.urls
    first = requests.post(f"{a}/widget/api/messages", json={"text": "How do I reset my password?"}, timeout=15)
    assert first.status_code == 200
    conversation_id = first.json()["conversation_id"]
    # The secret one process issued opens the conversation on the other (the key is shared).
    secret = {"X-Parley-Secret": first.json()["secret"]}
    second = requests.post(f"{b}/widget/api/messages", timeout=15, headers=secret,
                           json={"text": "how long does delivery take", "conversation_id": conversation_id})
    assert second.status_code == 200
    assert second.json()["replies"][0]["sources"][0]["id"] == "delivery-times"

    for url in (a, b):
        history = requests.get(f"{url}/widget/api/conversations/{conversation_id}", headers=secret, timeout=5).json()
        assert [m["direction"] for m in history["messages"]] == ["in", "out", "in", "out"]
    sessions = RedisSessionStore(connect(cluster.redis_url), prefix=cluster.prefix, ttl=60,
                                 max_turns=20, max_chars=8000)
    session = sessions.load(conversation_id)
    assert session is not None
    assert [turn.text for turn in session.history if turn.role == "customer"] == [
        "How do I reset my password?", "how long does delivery take"]


def test_200_messages_with_retries_are_each_answered_once_and_in_order(cluster: Cluster) -> None:
    rng = random.Random(5)
    plans = {f"DSCALE{n:03d}": rng.sample(QUESTIONS, k=len(QUESTIONS)) for n in range(20)}
    retried = []
    before = len(cluster.stub.to("chat.postMessage"))

    def customer(channel: str) -> None:
        # One customer writes its ten messages one after another to either process, as Slack's load
        # balancer would; a third of the deliveries come again (Slack's retry) to the other process.
        for number, text in enumerate(plans[channel]):
            body = slack_event(channel=channel, user=f"U{channel}", text=text, event_id=f"Ev{channel}{number:02d}")
            first, other = rng.sample(cluster.urls, 2)
            assert post_slack(first, body).status_code == 200
            if rng.random() < 0.3:
                assert post_slack(other, body, retry=1).status_code == 200
                retried.append(channel)

    with ThreadPoolExecutor(len(plans)) as pool:
        list(pool.map(customer, plans))
    assert retried  # the run did mix retries in

    cluster.stub.wait_for("chat.postMessage", count=before + 200, timeout=60)
    cluster.stub.settle("chat.postMessage", quiet=1.0)
    for channel, questions in plans.items():
        assert answered_sources(cluster.stub, channel, since=before) == questions, channel


def test_a_killed_worker_s_message_is_answered_once_by_another(cluster: Cluster) -> None:
    """Web without workers, two `parley worker`s; the first is SIGKILLed while it holds a message."""
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    config = write_config(cluster.directory, key_prefix=prefix, visibility_timeout_seconds=2)
    env = {**cluster.env, "PARLEY_CONFIG": str(config)}
    client = connect(cluster.redis_url)
    url, web = serve(env, cluster.directory / "web-only.log", "--no-workers")
    first = Parley(["worker"], env, cluster.directory / "worker-1.log")
    second: Parley | None = None
    try:
        before = len(cluster.stub.to("chat.postMessage"))
        lock = _lock_messages_table(cluster.database_url)  # the worker will hang inside the message
        body = slack_event(channel="DKILLED01", user="UKILLED01", text=QUESTIONS[4], event_id="EvKILLED0001")
        assert post_slack(url, body).status_code == 200
        # The second worker starts only once the first holds the message (it may still be booting).
        wait_until(lambda: _pending(client, prefix) == 1, timeout=40, what="the worker to hold the message")
        second = Parley(["worker"], env, cluster.directory / "worker-2.log")
        first.kill()
        lock.rollback()
        lock.close()
        cluster.stub.wait_for("chat.postMessage", count=before + 1, timeout=20)
        cluster.stub.settle("chat.postMessage", quiet=1.5)
        assert answered_sources(cluster.stub, "DKILLED01", since=before) == [QUESTIONS[4]]
        wait_until(lambda: _pending(client, prefix) == 0, timeout=10, what="the entry to be acknowledged")
        assert "attempt=2" in second.output()  # the second worker's run, the killed one's retry
    finally:
        running = [process for process in (first, second, web) if process is not None]
        for process in running:
            process.terminate()
        for process in running:
            process.stop()
        delete_prefix(client, prefix)


def test_redis_down_answers_503_then_everything_stored_is_answered(
        tmp_path: Path, stub: StubServer) -> None:
    own_redis = RedisServer(tmp_path)
    own_redis.start()
    config = write_config(tmp_path, key_prefix="parley:", visibility_timeout_seconds=2)
    env = parley_env(config, tmp_path / "var", REDIS_URL=own_redis.url, SLACK_API_URL=stub.url)
    env.pop("DATABASE_URL", None)
    url, server = serve(env, tmp_path / "serve.log")
    plans = {f"DOUTAGE{n}": QUESTIONS for n in range(4)}
    acked: list[str] = []
    unexpected: list[int] = []
    refused = threading.Event()

    def platform() -> None:
        # Slack's behaviour: a non-2xx delivery is retried (here quickly) until it is acknowledged.
        for number in range(len(QUESTIONS)):
            for channel, questions in plans.items():
                body = slack_event(channel=channel, user=f"U{channel}", text=questions[number],
                                   event_id=f"Ev{channel}{number:02d}")
                for retry in range(200):
                    status = _status(url, body, retry)
                    if status == 200:
                        acked.append(channel)
                        break
                    if status != 503:
                        unexpected.append(status)
                    refused.set()
                    threading.Event().wait(0.1)

    poster = threading.Thread(target=platform)
    before = len(stub.to("chat.postMessage"))
    try:
        poster.start()
        wait_until(lambda: len(acked) >= 10, timeout=20, what="the first deliveries")
        own_redis.stop()
        wait_until(refused.is_set, timeout=10, what="a 503")
        assert requests.get(f"{url}/readyz", timeout=5).status_code == 503
        own_redis.start()
        poster.join(timeout=60)
        assert unexpected == []
        assert len(acked) == 40
        wait_until(lambda: _ready(url), timeout=10, what="/readyz to recover")
        stub.wait_for("chat.postMessage", count=before + 40, timeout=40)
        stub.settle("chat.postMessage", quiet=1.0)
        for channel, questions in plans.items():
            assert answered_sources(stub, channel) == questions, channel
    finally:
        poster.join(timeout=60)
        server.stop()
        own_redis.stop()


def _status(url: str, body: bytes, retry: int) -> int:
    try:
        return post_slack(url, body, retry=retry).status_code
    except (requests.ConnectionError, requests.Timeout):
        return 503  # Slack counts a timeout as a failure too, and retries


def _ready(url: str) -> bool:
    return requests.get(f"{url}/readyz", timeout=5).status_code == 200


def _pending(client: Client, prefix: str) -> int:
    """Conversations claimed by a worker right now, over the sample config's 16 shards."""
    pending = 0
    for shard in range(16):
        try:
            pending += client.xpending(f"{prefix}inbox:{{s{shard}}}:ready", "parley-workers")["pending"]
        except redis.ResponseError:  # no worker made the group yet
            continue
    return pending


def _lock_messages_table(database_url: str) -> psycopg.Connection:
    connection = psycopg.connect(database_url)
    connection.execute("LOCK TABLE message IN EXCLUSIVE MODE")  # reads pass, inserts wait
    return connection
