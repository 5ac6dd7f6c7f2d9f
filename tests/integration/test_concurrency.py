"""Waiting costs no thread, and a slow conversation holds up no other: `parley serve` (gevent) as
customers meet it, embedded and on Redis, with an OpenAI-compatible stub whose answers to one
customer take seconds."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from parley.stores.redis import connect
from tests.integration.conftest import url_of
from tests.integration.redis_processes import (
    delete_prefix, parley_env, post_slack, serve, slack_event, wait_until, write_config,
)
from tests.stubs.openai_stub import OpenAIStub
from tests.stubs.server import StubServer, serving, slack_api

pytestmark = pytest.mark.timeout(180)

SLOW_WORD = "glacier"


@pytest.fixture
def llm() -> Iterator[OpenAIStub]:
    stub = OpenAIStub(latency=0.2, slow_word=SLOW_WORD, slow_seconds=8.0).start()
    yield stub
    stub.stop()


@pytest.fixture
def slack() -> Iterator[StubServer]:
    with serving(slack_api) as server:
        yield server


@pytest.fixture(params=["embedded", pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("cluster", marks=pytest.mark.redis)])
def server(request: pytest.FixtureRequest, tmp_path: Path, llm: OpenAIStub, slack: StubServer) -> Iterator[str]:
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    extra = {} if request.param == "embedded" else {"REDIS_URL": url_of(request, request.param)}
    env = parley_env(write_config(tmp_path, key_prefix=prefix), tmp_path / "var", SLACK_API_URL=slack.url,
                     OPENAI_API_KEY="sk-test-concurrency", OPENAI_BASE_URL=llm.base_url, **extra)
    url, process = serve(env, tmp_path / "serve.log")
    try:
        yield url
    finally:
        process.stop()
        if extra:
            delete_prefix(connect(extra["REDIS_URL"]), prefix)


def answered(slack: StubServer, channel: str) -> bool:
    return any(call.params.get("channel") == channel for call in slack.to("chat.postMessage"))


def test_a_slow_answer_holds_up_no_other_customer(server: str, slack: StubServer) -> None:
    slow = slack_event(channel="DSLOW0001", user="USLOW0001", text=f"my {SLOW_WORD} order never came",
                       event_id="EvSLOW0001")
    assert post_slack(server, slow).status_code == 200
    customers = [f"DQUICK{n:03d}" for n in range(30)]
    for number, channel in enumerate(customers):
        body = slack_event(channel=channel, user=f"U{channel[1:]}", text="How do I reset my password?",
                           event_id=f"EvQUICK{number:03d}")
        assert post_slack(server, body).status_code == 200
    # All thirty are answered while the first customer's answer is still on its way (8 s).
    wait_until(lambda: all(answered(slack, channel) for channel in customers), timeout=30,
               what="the quick customers' answers")
    assert not answered(slack, "DSLOW0001")
    wait_until(lambda: answered(slack, "DSLOW0001"), timeout=30, what="the slow customer's answer")


def test_open_event_streams_leave_webhooks_and_health_checks_answering(server: str, slack: StubServer) -> None:
    """Two hundred open widget panels (several per conversation) do not starve the server."""
    first = requests.post(f"{server}/widget/api/messages", json={"text": "How do I reset my password?"}, timeout=15)
    conversation, secret = first.json()["conversation_id"], {"X-Parley-Secret": first.json()["secret"]}
    opened = threading.Semaphore(0)
    received: list[str] = []
    stop = threading.Event()

    def panel(_: int) -> None:
        with requests.get(f"{server}/widget/api/conversations/{conversation}/events", stream=True,
                          headers=secret, timeout=60) as response:
            assert response.status_code == 200
            opened.release()
            for line in response.iter_lines(decode_unicode=True):
                if line.startswith("data:") and '"type":"message"' in line:
                    received.append(line)
                    return
                if stop.is_set():
                    return

    with ThreadPoolExecutor(200) as pool:
        futures = [pool.submit(panel, n) for n in range(200)]
        for _ in range(200):
            assert opened.acquire(timeout=60)
        assert requests.get(f"{server}/healthz", timeout=3).status_code == 200
        body = slack_event(channel="DWHILE001", user="UWHILE001", text="How do I reset my password?",
                           event_id="EvWHILE001")
        assert post_slack(server, body, timeout=3).status_code == 200
        reply = requests.post(f"{server}/widget/api/messages", timeout=15, headers=secret,
                              json={"text": "how long does delivery take", "conversation_id": conversation})
        assert reply.status_code == 200
        wait_until(lambda: len(received) == 200, timeout=30, what="the reply on every open panel")
        stop.set()
        for future in futures:
            future.result(timeout=30)
    wait_until(lambda: answered(slack, "DWHILE001"), timeout=30, what="the Slack customer's answer")
