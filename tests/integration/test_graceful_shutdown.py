"""SIGTERM under load, as Kubernetes sends it on a rollout or a node drain: nothing acknowledged is
lost, nothing is answered twice.

A real `parley serve` (two gunicorn processes, Redis inbox, PostgreSQL log) acknowledges signed Slack
deliveries; the Slack API stub answers slowly, so messages are in flight when SIGTERM arrives. The
stopping pod finishes what it holds and hands the rest back; a second pod answers the remainder. The
same run shows ``/metrics`` summing both gunicorn processes (PROMETHEUS_MULTIPROC_DIR).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from parley.stores.redis import connect
from tests.integration.redis_processes import (
    delete_prefix, parley_env, post_slack, postgres_database, serve, slack_event, write_config,
)
from tests.integration.test_redis_scaleout import QUESTIONS, answered_sources
from tests.stubs.server import Call, StubServer, serving, slack_api

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]

CHANNELS = [f"DTERM{n}" for n in range(8)]
PER_CHANNEL = 4
GRACE = 15  # --graceful-timeout, as PARLEY_GRACEFUL_TIMEOUT sets it in the pod


def slow_slack(call: Call) -> tuple[int, dict[str, Any]]:
    # Each answer takes a while to post (4 a conversation: 3 s), so work is left at SIGTERM even on
    # a quiet machine that acks and scrapes the metrics quickly.
    time.sleep(0.75)
    return slack_api(call)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with serving(slow_slack) as server:
        yield server


def messages_in(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "parley_messages_in_total" and sample.labels == {"channel": "slack"})


def test_sigterm_under_load_loses_nothing_and_answers_once(tmp_path: Path, stub: StubServer, redis_url: str) -> None:
    prefix = f"parley-term-{uuid.uuid4().hex[:8]}:"
    config = write_config(tmp_path, key_prefix=prefix, visibility_timeout_seconds=2)
    with postgres_database() as database_url:
        env = parley_env(config, tmp_path / "var", REDIS_URL=redis_url, DATABASE_URL=database_url,
                         SLACK_API_URL=stub.url, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
                         PARLEY_LOG_JSON="true")
        url, first = serve(env, tmp_path / "first.log", "--processes", "2", "--graceful-timeout", str(GRACE))
        second = None
        try:
            acked = deliver_all(url)
            assert acked == len(CHANNELS) * PER_CHANNEL
            # Whichever gunicorn process answers the scrape, it reports both processes' counts.
            assert {messages_in(url) for _ in range(6)} == {acked}

            os.killpg(first.process.pid, signal.SIGTERM)
            assert first.process.wait(timeout=GRACE + 10) == 0
            posted_by_first = len(stub.to("chat.postMessage"))
            assert 0 < posted_by_first < acked  # it stopped with work left, and finished what it held
            # The pod's whole output, gunicorn's lines included, is JSON lines, and nothing crashed.
            lines = [json.loads(line) for line in first.output().splitlines() if line.strip()]
            events = [line["event"] for line in lines]
            assert "message_crashed" not in events and not any("exception" in line for line in lines)
            assert {"starting", "Handling signal: term", "Shutting down: Master"} <= set(events)

            url, second = serve(env, tmp_path / "second.log")
            stub.wait_for("chat.postMessage", count=acked, timeout=40)
            stub.settle("chat.postMessage", quiet=1.0)
            for channel in CHANNELS:
                assert answered_sources(stub, channel) == QUESTIONS[:PER_CHANNEL], channel
        finally:
            first.stop()
            if second is not None:
                second.stop()
            delete_prefix(connect(redis_url), prefix)


def deliver_all(url: str) -> int:
    """Every channel's messages, in order per channel, channels in parallel (as Slack delivers)."""
    acked: list[str] = []
    lock = threading.Lock()

    def channel_thread(channel: str) -> None:
        for number in range(PER_CHANNEL):
            body = slack_event(channel=channel, user=f"U{channel}", text=QUESTIONS[number],
                               event_id=f"Ev{channel}{number:02d}")
            response = post_slack(url, body)
            assert response.status_code == 200, response.text
            with lock:
                acked.append(channel)

    threads = [threading.Thread(target=channel_thread, args=(channel,)) for channel in CHANNELS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return len(acked)
