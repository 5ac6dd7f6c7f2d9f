"""Embedded mode (no Redis) across a restart: nothing acknowledged is lost, nothing answered is repeated.

A real `parley serve` with the shipped config and no REDIS_URL acknowledges signed Slack messages
while the Slack API is down (every post fails, so every answer is still owed), and is killed with
SIGKILL. Started again on the same data directory, with Slack back, it answers each message once;
Slack's redelivery of every one of them afterwards sends nothing. Below that, the stores themselves:
the embedded inbox and send ledger read back what a previous process left.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from parley.core.envelope import Envelope
from parley.stores.memory_inbox import MemoryInbox
from parley.stores.sqlite_journal import InboxJournal, SqliteSendLedger, open_journal_database
from tests.integration.redis_processes import parley_env, post_slack, serve, slack_event, write_config
from tests.stubs.server import Call, serving, slack_api

pytestmark = pytest.mark.timeout(120)

CHANNELS = [f"DKILL{n}" for n in range(6)]
QUESTIONS = ["How do I reset my password?", "Why is my account locked?"]


class Slack:
    """The Slack API stub: down (every post a 503) until ``up``; counts the posts it accepted."""

    def __init__(self) -> None:
        self.up = threading.Event()
        self.delivered: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> tuple[int, dict[str, Any]]:
        if call.endpoint == "chat.postMessage":
            if not self.up.is_set():
                return 503, {"ok": False, "error": "service_unavailable"}
            with self._lock:
                self.delivered.append((call.params["channel"], call.params["text"]))
        return slack_api(call)

    def posts_to(self, channel: str) -> int:
        with self._lock:
            return sum(1 for posted, _ in self.delivered if posted == channel)


def test_a_killed_embedded_server_answers_every_acknowledged_message_once_after_a_restart(tmp_path: Path) -> None:
    slack = Slack()
    events = [(channel, slack_event(channel=channel, user=f"U{channel}", text=question,
                                    event_id=f"Ev{uuid.uuid4().hex[:10]}"))
              for channel in CHANNELS for question in QUESTIONS]
    with serving(slack) as stub:
        env = parley_env(write_config(tmp_path), tmp_path / "var", SLACK_API_URL=stub.url)
        url, first = serve(env, tmp_path / "first.log")
        try:
            for _, body in events:
                assert post_slack(url, body).status_code == 200
            # The worker has tried (and failed) to answer: the messages are acknowledged and owed.
            stub.wait_for("chat.postMessage", count=len(CHANNELS), timeout=30)
        finally:
            first.kill()
        assert slack.delivered == []

        slack.up.set()
        url, second = serve(env, tmp_path / "second.log")
        try:
            deadline = time.monotonic() + 60
            while len(slack.delivered) < len(events) and time.monotonic() < deadline:
                time.sleep(0.1)
            stub.settle("chat.postMessage", quiet=1.0)
            answered = {channel: slack.posts_to(channel) for channel in CHANNELS}
            for _, body in events:  # Slack redelivers every one of them: all answered already
                assert post_slack(url, body, retry=1).status_code == 200
            stub.settle("chat.postMessage", quiet=2.0)
        finally:
            second.stop()
    assert answered == {channel: len(QUESTIONS) for channel in CHANNELS}, "each acknowledged message answered once"
    assert len(slack.delivered) == len(events), "and the redeliveries not at all"


def envelope(n: int, conversation: str = "slack:T1:D1") -> Envelope:
    return Envelope(channel="slack", conversation_id=conversation, message_id=f"17000000{n:02d}.000100",
                    sender="U1", text=f"question {n}")


def test_the_embedded_inbox_reads_back_what_the_last_process_left(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    before = MemoryInbox(dedupe_ttl=3600, max_attempts=2, journal=InboxJournal(open_journal_database(path)))
    for n in range(4):
        assert before.put(envelope(n))
    [claim] = before.claim(1, timeout=1)
    before.done(before.next(claim))           # answered: gone
    poison = before.next(claim)
    assert not before.fail(poison, "boom")    # tried once
    # ... and the process dies here.

    after = MemoryInbox(dedupe_ttl=3600, max_attempts=2, journal=InboxJournal(open_journal_database(path)))
    assert not after.put(envelope(0)) and not after.put(envelope(1)), "a platform's retry is still a retry"
    [claim] = after.claim(1, timeout=1)
    again = after.next(claim)
    assert (again.envelope.text, again.attempt) == ("question 1", 2)  # its tries go on counting
    assert after.fail(again, "boom")          # the second try was its last: dead-lettered
    assert [after.next(claim).envelope.text] == ["question 2"]
    assert after.status()["queued"] == 2

    later = MemoryInbox(dedupe_ttl=3600, max_attempts=2, journal=InboxJournal(open_journal_database(path)))
    assert [(letter.delivery.envelope.text, letter.reason) for letter in later.dead_letters] == [("question 1", "boom")]
    assert later.put(envelope(9)), "new messages still go in, numbered after every earlier one"


def test_the_embedded_send_ledger_remembers_what_was_sent_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "parley.db"
    ledger = SqliteSendLedger(open_journal_database(path), ttl=3600)
    assert ledger.claim("r-sent") and ledger.claim("r-in-flight")
    ledger.confirm("r-sent")
    # The process dies while "r-in-flight" is being sent.

    again = SqliteSendLedger(open_journal_database(path), ttl=3600)
    assert not again.claim("r-sent"), "sent before the restart: never again"
    assert again.claim("r-in-flight"), "never confirmed: the retry may send it (at least once)"
    assert again.claim("r-new")
