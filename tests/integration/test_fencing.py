"""A worker paused past its claim (SIGSTOP: a GC pause, a frozen VM) must not undo its successor's work.

Two real `parley serve` processes share Redis and PostgreSQL. The first takes a Slack message and
asks the model, which answers slowly; while it waits, the process is stopped (SIGSTOP). Its claim
lapses, the second process takes the conversation over and answers. Then the first is resumed
(SIGCONT) and gets its own, different answer: the conversation's state it would save is fenced off
(the take it holds is older than the one that saved), so it neither overwrites that state nor sends.
The customer sees one answer, and the conversation remembers that answer.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis
import yaml

from tests.integration.redis_processes import (
    REDIS_URL, delete_prefix, parley_env, post_slack, postgres_database, serve, slack_event, write_config,
    wait_until,
)
from tests.stubs.openai_stub import OpenAIStub, Outcome
from tests.stubs.server import serving, slack_api

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(120)]

FIRST = "Use the Forgot password link (the first worker's answer)."
SECOND = "Use the Forgot password link (the second worker's answer)."


def test_a_resumed_worker_whose_claim_was_taken_over_changes_nothing(tmp_path: Path) -> None:
    prefix = f"parley-fence-{uuid.uuid4().hex[:8]}:"
    llm = OpenAIStub().start()
    llm.queue(Outcome(text=FIRST, delay=6.0), Outcome(text=SECOND))
    client = redis.Redis.from_url(REDIS_URL)
    first = second = None
    try:
        with serving(slack_api) as slack, postgres_database() as database_url:
            config = write_config(tmp_path, key_prefix=prefix, visibility_timeout_seconds=2)
            # The pause lasts as long as the second process takes to start: on a loaded machine
            # past the 20 s API timeout, and the resumed client would ask the model again.
            settings = yaml.safe_load(config.read_text(encoding="utf-8"))
            settings["llm"]["timeout_seconds"] = 110
            config.write_text(yaml.safe_dump(settings), encoding="utf-8")
            env = parley_env(config, tmp_path / "var", REDIS_URL=REDIS_URL, DATABASE_URL=database_url,
                             SLACK_API_URL=slack.url, OPENAI_API_KEY="sk-test-fencing",
                             OPENAI_BASE_URL=llm.base_url)
            url, first = serve(env, tmp_path / "first.log")
            body = slack_event(channel="DFENCE1", user="UFENCE1", text="How do I reset my password?",
                               event_id=f"Ev{uuid.uuid4().hex[:10]}")
            assert post_slack(url, body).status_code == 200
            wait_until(lambda: len(llm.requests) == 1, timeout=20, what="the first worker asking the model")
            os.killpg(first.process.pid, signal.SIGSTOP)

            _, second = serve(env, tmp_path / "second.log")
            posts = slack.wait_for("chat.postMessage", timeout=30)
            assert [call.params["text"].split("\n")[0] for call in posts] == [SECOND]

            os.killpg(first.process.pid, signal.SIGCONT)
            # Resumed, it gets the model's answer, then stands down: at its save, before it logs or sends.
            after_answer = lambda: first.output().partition("llm_answered")[2]  # noqa: E731
            wait_until(lambda: "claim_lost" in after_answer(), timeout=30, what="the first worker to stand down")
            assert "was saved by a later claim" in after_answer()
            time.sleep(1.0)  # anything it would still do, it would do now
            assert [call.params["text"].split("\n")[0] for call in slack.to("chat.postMessage")] == [SECOND]
            session = json.loads(client.get(f"{prefix}session:slack:T0123ACME:DFENCE1") or "{}")
            assert [turn["text"] for turn in session["history"]] == ["How do I reset my password?", SECOND]
            assert len(llm.requests) == 2, "the first worker's answer came, and was not used"
    finally:
        for server in (first, second):
            if server is not None:
                os.killpg(server.process.pid, signal.SIGCONT) if server.process.poll() is None else None
                server.stop()
        llm.stop()
        delete_prefix(client, prefix)
