"""Faults against the real server (`parley serve`, Redis, PostgreSQL): nothing lost, nothing twice.

Covered elsewhere, not repeated here: Redis stopped and restarted, and a SIGKILLed worker
(test_redis_scaleout.py); SIGTERM under load (test_graceful_shutdown.py); the LLM engine's own
retries, timeouts and circuit breaker (test_llm_resilience.py). Here: PostgreSQL unreachable (a
loopback TCP proxy of the test's own is cut and restored, so the shared server is never touched),
the LLM API failing in every way while the server answers real traffic, and a channel API that
keeps refusing a message, which is retried, dead-lettered, shown by `parley inbox status` and replayed.
"""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.integration.redis_processes import (
    delete_prefix, parley_env, post_slack, postgres_database, serve, slack_event, wait_until,
    write_config,
)
from parley.stores.redis import connect
from tests.integration.test_server import PARLEY
from tests.stubs.openai_stub import OpenAIStub, rate_limited, server_error, slow
from tests.stubs.server import Call, StubServer, serving, slack_api
from tests.support.relay import Relay

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]
QUESTION = "How do I reset my password?"


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of the test's own, on one Redis and then on the Redis Cluster (``redis_url``)."""
    name = f"parley-test-{uuid.uuid4().hex[:8]}:"
    yield name
    delete_prefix(connect(redis_url), name)


def config_with(directory: Path, prefix: str, **sections: dict[str, Any]) -> Path:
    path = write_config(directory, key_prefix=prefix, visibility_timeout_seconds=1,
                        **sections.pop("storage", {}))
    config = yaml.safe_load(path.read_text())
    for name, values in sections.items():
        config[name].update(values)
    path.write_text(yaml.safe_dump(config))
    return path


def send(url: str, channel: str, count: int, *, start: int = 0) -> None:
    for n in range(start, start + count):
        body = slack_event(channel=channel, user=f"U{channel}", text=f"{QUESTION} (#{n})", event_id=f"Ev{channel}{n:03d}")
        assert post_slack(url, body).status_code == 200


def posts(stub: StubServer, channel: str) -> list[str]:
    return [call.params["text"] for call in stub.to("chat.postMessage") if call.params.get("channel") == channel]


def test_postgres_unreachable_for_a_while_loses_and_repeats_nothing(tmp_path: Path, prefix: str, redis_url: str) -> None:
    with serving(slack_api) as stub, postgres_database() as database_url, Relay(5432) as proxy:
        proxied = database_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        config = config_with(tmp_path, prefix, storage={"max_attempts": 3})
        env = parley_env(config, tmp_path / "var", REDIS_URL=redis_url, DATABASE_URL=proxied, SLACK_API_URL=stub.url)
        url, server = serve(env, tmp_path / "serve.log")
        try:
            channels = [f"DSQL{n}" for n in range(3)]
            for channel in channels:
                send(url, channel, 2)
            stub.wait_for("chat.postMessage", count=6, timeout=20)
            proxy.cut()
            for channel in channels:  # still acknowledged: the inbox is Redis, not SQL
                send(url, channel, 4, start=2)
            wait_until(lambda: requests.get(f"{url}/readyz", timeout=5).status_code == 503, timeout=10,
                       what="/readyz to report the database down")
            threading.Event().wait(4.0)  # longer than three attempts' backoff: no message may give up
            proxy.restore()
            stub.wait_for("chat.postMessage", count=18, timeout=40)
            stub.settle("chat.postMessage", quiet=1.0)
            for channel in channels:
                answers = posts(stub, channel)
                assert len(answers) == 6, (channel, answers)
            assert dead_letters(redis_url, prefix) == 0
        finally:
            server.stop()


def test_the_llm_api_failing_every_way_still_answers_each_message_once(tmp_path: Path, prefix: str, redis_url: str) -> None:
    llm = OpenAIStub().start()
    llm.queue(*[server_error()] * 4, rate_limited("1"), rate_limited("1"), slow(3.0), slow(3.0))
    try:
        with serving(slack_api) as stub:
            config = config_with(tmp_path, prefix, llm={"timeout_seconds": 1.0, "max_retries": 1})
            env = parley_env(config, tmp_path / "var", REDIS_URL=redis_url, SLACK_API_URL=stub.url,
                             OPENAI_API_KEY="sk-faults-0123456789abcdef", OPENAI_BASE_URL=llm.base_url)
            url, server = serve(env, tmp_path / "serve.log")
            try:
                channels = [f"DLLM{n}" for n in range(4)]
                for channel in channels:
                    send(url, channel, 3)
                stub.wait_for("chat.postMessage", count=12, timeout=60)
                stub.settle("chat.postMessage", quiet=1.5)
                for channel in channels:
                    assert len(posts(stub, channel)) == 3, channel
                assert llm.calls >= 8  # every scripted failure was met
            finally:
                server.stop()
    finally:
        llm.stop()


def test_a_channel_api_that_keeps_refusing_dead_letters_the_message_visibly(tmp_path: Path, prefix: str, redis_url: str) -> None:
    failing = {"DBROKEN1"}

    def slack(call: Call) -> tuple[int, dict[str, Any]]:
        if call.endpoint == "chat.postMessage" and call.params.get("channel") in failing:
            # A refusal that will not pass by waiting (a 5xx or 429 is first waited out in place).
            return 200, {"ok": False, "error": "channel_not_found"}
        return slack_api(call)

    with serving(slack) as stub:
        config = config_with(tmp_path, prefix, storage={"max_attempts": 3})
        env = parley_env(config, tmp_path / "var", REDIS_URL=redis_url, SLACK_API_URL=stub.url)
        url, server = serve(env, tmp_path / "serve.log")
        try:
            send(url, "DBROKEN1", 1)
            send(url, "DHEALTHY", 2)
            wait_until(lambda: dead_letters(redis_url, prefix) == 1, timeout=30, what="the message to be dead-lettered")
            assert len(posts(stub, "DBROKEN1")) == 3  # each attempt tried once more, then it gave up
            assert len(posts(stub, "DHEALTHY")) == 2  # the others were not held up
            status = subprocess.run([str(PARLEY), "inbox", "status"], env=env, capture_output=True, text=True,
                                    timeout=60, check=True).stdout
            assert "dead letters: 1" in status and "message EvDBROKEN1000" in status and "attempts 3" in status
            letter_id = next(line.split()[0] for line in status.splitlines() if "EvDBROKEN1000" in line)
            failing.clear()  # Slack is back: replay it
            subprocess.run([str(PARLEY), "inbox", "replay", letter_id], env=env, check=True, timeout=60,
                           capture_output=True)
            stub.wait_for("chat.postMessage", count=6, timeout=20)
            stub.settle("chat.postMessage", quiet=1.0)
            delivered = Counter(call.params["channel"] for call in stub.to("chat.postMessage")
                                if call.params.get("channel") == "DBROKEN1")
            assert delivered["DBROKEN1"] == 4  # three refused attempts, then one delivery
            assert dead_letters(redis_url, prefix) == 0
        finally:
            server.stop()


def dead_letters(redis_url: str, prefix: str) -> int:
    """Dead letters over the sample config's 16 inbox shards."""
    client = connect(redis_url)
    return sum(client.xlen(f"{prefix}inbox:{{s{shard}}}:dead") for shard in range(16))
