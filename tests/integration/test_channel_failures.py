"""A platform failing: transient failures are waited out, permanent ones dead-letter, nothing twice.

The official clients talk over real HTTP to loopback stubs that answer 429 (with Retry-After), 5xx
or a permanent refusal; the app runs its real workers, inbox and send ledger.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from slack_sdk import WebClient
from werkzeug.serving import make_server

from parley.channels.slack import SlackAdapter
from parley.channels.slack_desk import SlackDesk
from parley.channels.telegram import TelegramAdapter
from parley.channels.twilio_sms import TwilioAdapter
from parley.core.desk import DeskPost
from parley.core.envelope import Reply
from parley.core.handoff import DESK
from parley.errors import UpstreamError
from parley.worker.pipeline import Outbox, SendLedger
from parley.stores.memory import MemorySendLedger
from parley.stores.desk import SqlDeskDirectory
from parley.stores.redis import RedisSendLedger, connect
from parley.stores.sql import SqlConversationLog, open_database
from parley.webhooks.app import create_app
from tests.conftest import make_envelope, make_settings
from tests.integration.conftest import url_of
from tests.integration.redis_processes import delete_prefix
from tests.integration.test_slack import BOT_TOKEN, SIGNING_SECRET, payload, post
from tests.stubs.server import Call, StubServer, serving, slack_api, telegram_api, twilio_api

Answer = Callable[[Call], Any]


class Script:
    """Answers the next calls to ``endpoint`` from a list (then normally); records what got through."""

    def __init__(self, normal: Answer, endpoint: str, failures: list[Any]) -> None:
        self.normal, self.endpoint, self.failures = normal, endpoint, failures
        self.delivered: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> Any:
        with self._lock:
            if call.endpoint == self.endpoint and self.failures:
                return self.failures.pop(0)
            if call.endpoint == self.endpoint:
                self.delivered.append(str(call.params.get("text") or call.params.get("Body")))
        return self.normal(call)


def slack_app(tmp_path: Path, stub: StubServer, *, max_attempts: int) -> Flask:
    settings = make_settings(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                             SLACK_API_URL=stub.url + "/api/")
    settings = settings.model_copy(update={"storage": settings.storage.model_copy(
        update={"max_attempts": max_attempts})})
    return create_app(settings)


def test_rate_limits_and_server_errors_are_waited_out_without_spending_attempts(tmp_path: Path) -> None:
    # One attempt only: before, the first 503 dead-lettered the message at once.
    script = Script(slack_api, "chat.postMessage", [
        (503, {"ok": False, "error": "service_unavailable"}),
        (429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"}),
    ])
    with serving(script) as stub:
        app = slack_app(tmp_path, stub, max_attempts=1)
        try:
            assert post(app.test_client(), payload("message_im.json")).status_code == 200
            calls = stub.settle("chat.postMessage", at_least=3, quiet=1.0)
            inbox = app.extensions["parley"].inbox
            assert inbox.dead_letters == [] and inbox.depth() == 0
        finally:
            app.extensions["parley"].close()
    assert len(calls) == 3  # refused twice, then delivered
    assert len(script.delivered) == 1 and "Forgot password?" in script.delivered[0]


def test_a_permanent_refusal_counts_as_an_attempt_and_dead_letters(tmp_path: Path) -> None:
    refusal = (200, {"ok": False, "error": "channel_not_found"})
    script = Script(slack_api, "chat.postMessage", [refusal] * 5)
    with serving(script) as stub:
        app = slack_app(tmp_path, stub, max_attempts=2)
        try:
            assert post(app.test_client(), payload("message_im.json")).status_code == 200
            inbox = app.extensions["parley"].inbox
            calls = stub.settle("chat.postMessage", at_least=2, quiet=1.0)
            [(delivery, reason)] = [(letter.delivery, letter.reason) for letter in inbox.dead_letters]
        finally:
            app.extensions["parley"].close()
    assert len(calls) == 2 and script.delivered == []
    assert delivery.attempt == 2 and "channel_not_found" in reason


@pytest.mark.parametrize(("sdk_error", "transient", "retry_after"), [
    ((429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}), True, 30.0),
    ((502, {"ok": False, "error": "bad_gateway"}), True, None),
    ((200, {"ok": False, "error": "invalid_auth"}), False, None),
])
def test_slack_failures_are_classified_at_the_boundary(sdk_error: Any, transient: bool,
                                                       retry_after: float | None) -> None:
    with serving(Script(slack_api, "chat.postMessage", [sdk_error])) as stub:
        adapter = SlackAdapter(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=stub.url + "/api",
                               max_text_chars=2000)
        with pytest.raises(UpstreamError) as failed:
            adapter.send([Reply(conversation_id="slack:T:D", channel="slack", text="Hi",
                                route={"channel": "D1"})])
    assert (failed.value.transient, failed.value.retry_after) == (transient, retry_after)


@pytest.mark.parametrize(("status", "transient"), [(429, True), (503, True), (400, False)])
def test_twilio_failures_are_classified_at_the_boundary(status: int, transient: bool) -> None:
    refusal = (status, {"code": 20429 if status == 429 else 21211, "message": "refused", "status": status})
    with serving(Script(twilio_api(), "Messages.json", [refusal])) as stub:
        adapter = TwilioAdapter(account_sid="AC" + "0" * 32, auth_token="token", api_url=stub.url,
                                public_url=None, max_text_chars=2000)
        with pytest.raises(UpstreamError) as failed:
            adapter.send([Reply(conversation_id="twilio:+1:+2", channel="twilio", text="Hi",
                                route={"to": "+15550001", "from": "+15550002"})])
    assert failed.value.transient is transient


@pytest.mark.parametrize(("refusal", "transient", "retry_after"), [
    ((429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7}}), True, 7.0),
    ((502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}), True, None),
    ((403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}),
     False, None),
    ((400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}), False, None),
])
def test_telegram_failures_are_classified_at_the_boundary(refusal: Any, transient: bool,
                                                          retry_after: float | None) -> None:
    with serving(Script(telegram_api(), "sendMessage", [refusal])) as stub:
        adapter = TelegramAdapter(bot_token="123:abc", secret_token="s", api_url=stub.url,
                                  max_text_chars=2000)
        try:
            with pytest.raises(UpstreamError) as failed:
                adapter.send([Reply(conversation_id="telegram:5", channel="telegram", text="Hi",
                                    route={"chat_id": "5"})])
        finally:
            adapter.close()
    assert (failed.value.transient, failed.value.retry_after) == (transient, retry_after)


# --- a send that fails halfway: the retry sends the rest, and nothing that already went out ---

@pytest.fixture(params=["memory", "redis", "cluster"])
def ledger(request: pytest.FixtureRequest) -> Iterator[SendLedger]:
    if request.param == "memory":
        yield MemorySendLedger()
        return
    client = connect(url_of(request, request.param))
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    yield RedisSendLedger(client, prefix=prefix, ttl=60)
    delete_prefix(client, prefix)


def _replies(channel: str, route: dict[str, str], texts: list[str]) -> list[Reply]:
    return [Reply(conversation_id=f"{channel}:c", channel=channel, text=text, route=route,
                  reply_id=f"m1-{index}") for index, text in enumerate(texts)]


def _deliver_through_one_failure(outbox: Outbox, replies: list[Reply]) -> None:
    with pytest.raises(UpstreamError):
        outbox.deliver(replies)
    outbox.deliver(replies)  # the worker's retry
    outbox.deliver(replies)  # and one more, as after a crash: nothing left to send


def test_slack_a_failure_at_the_second_reply_does_not_repeat_the_first(ledger: SendLedger) -> None:
    texts = ["First answer.", "Second answer.", "Third answer."]
    refused = [False]

    def answer(call: Call) -> Any:
        if call.endpoint == "chat.postMessage" and len(script.delivered) == 1 and not refused[0]:
            refused[0] = True
            return 500, {"ok": False, "error": "internal_error"}
        return script(call)

    script = Script(slack_api, "chat.postMessage", [])
    with serving(answer) as stub:
        adapter = SlackAdapter(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=stub.url + "/api",
                               max_text_chars=2000)
        replies = _replies("slack", {"channel": "D1"}, texts)
        _deliver_through_one_failure(Outbox({"slack": adapter}, ledger), replies)
    assert refused[0] and script.delivered == texts  # each reply once, in order


def test_twilio_a_failure_at_the_third_chunk_does_not_repeat_the_first_two(ledger: SendLedger) -> None:
    sentences = " ".join(f"Sentence {i} of a long answer." for i in range(200))  # 5,700 characters
    refused = [False]

    def answer(call: Call) -> Any:
        if call.endpoint == "Messages.json" and len(script.delivered) == 2 and not refused[0]:
            refused[0] = True
            return 503, {"code": 20503, "message": "Service unavailable", "status": 503}
        return script(call)

    script = Script(twilio_api(), "Messages.json", [])
    with serving(answer) as stub:
        adapter = TwilioAdapter(account_sid="AC" + "0" * 32, auth_token="token", api_url=stub.url,
                                public_url=None, max_text_chars=2000)
        replies = _replies("twilio", {"to": "+15550001", "from": "+15550002"}, [sentences])
        _deliver_through_one_failure(Outbox({"twilio": adapter}, ledger), replies)
        chunks = adapter.chunks(replies[0])
    assert len(chunks) == 4 and refused[0]
    assert script.delivered == chunks  # each chunk once, in order


def test_telegram_a_failure_at_the_second_chunk_does_not_repeat_the_first(ledger: SendLedger) -> None:
    lines = "\n".join(f"Line {i} of a long answer, with some words to fill it up." for i in range(150))
    refused = [False]

    def answer(call: Call) -> Any:
        if call.endpoint == "sendMessage" and len(script.delivered) == 1 and not refused[0]:
            refused[0] = True
            return 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                         "parameters": {"retry_after": 1}}
        return script(call)

    script = Script(telegram_api(), "sendMessage", [])
    with serving(answer) as stub:
        adapter = TelegramAdapter(bot_token="123:abc", secret_token="s", api_url=stub.url,
                                  max_text_chars=2000)
        try:
            replies = _replies("telegram", {"chat_id": "5"}, [lines, "And a second reply."])
            _deliver_through_one_failure(Outbox({"telegram": adapter}, ledger), replies)
        finally:
            adapter.close()
    expected = adapter.chunks(replies[0]) + adapter.chunks(replies[1])
    assert len(expected) == 4 and refused[0]
    assert script.delivered == expected


def test_a_telegram_send_that_times_out_is_abandoned_not_left_running() -> None:
    # The answer trickles in a byte at a time (each read within the read timeout) for longer than
    # the adapter waits: the send must then be cancelled, not finish after the Outbox released it.
    finished, ended = [], threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        try:
            for _ in range(40):
                time.sleep(0.1)
                yield b" "
            yield json.dumps({"ok": True, "result": {"message_id": 1, "date": 0, "text": "Hi",
                                                     "chat": {"id": 5, "type": "private"}}}).encode()
            finished.append(True)
        finally:
            ended.set()

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    adapter = TelegramAdapter(bot_token="123:abc", secret_token="s", max_text_chars=2000, timeout=0.5,
                              api_url=f"http://127.0.0.1:{server.port}")
    try:
        with pytest.raises(UpstreamError) as failed:
            adapter.send([Reply(conversation_id="telegram:5", channel="telegram", text="Hi",
                                route={"chat_id": "5"})])
        assert failed.value.transient
        assert ended.wait(10)
    finally:
        adapter.close()
        server.shutdown()
    assert finished == []  # the connection was dropped mid-answer: nothing completes later


def test_desk_a_failure_at_the_second_chunk_does_not_repeat_the_first(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'desk.db'}")
    log = SqlConversationLog(engine)
    log.create_schema()
    log.record_inbound(make_envelope("A person, please", channel="slack", conversation_id="slack:T:D"))
    refused = [False]

    def answer(call: Call) -> Any:
        if call.endpoint == "chat.postMessage" and len(script.delivered) == 2 and not refused[0]:
            refused[0] = True
            return 503, {"ok": False, "error": "service_unavailable"}
        return script(call)

    script = Script(slack_api, "chat.postMessage", [])
    with serving(answer) as stub:
        desk = SlackDesk(client=WebClient(token=BOT_TOKEN, base_url=stub.url + "/api/", retry_handlers=[]),
                         signing_secret=SIGNING_SECRET, channel="CDESK", directory=SqlDeskDirectory(engine),
                         max_text_chars=2000)
        long_text = "\n\n".join(f"Paragraph {i}: " + "word " * 2000 for i in range(5))  # two chunks
        replies = [Reply(conversation_id="slack:T:D", channel=DESK, text="Handed off.",
                         desk=DeskPost(kind="open", handoff=1, customer_channel="slack"), reply_id="m1-0"),
                   Reply(conversation_id="slack:T:D", channel=DESK, text=long_text,
                         desk=DeskPost(kind="customer", handoff=1, customer_channel="slack"), reply_id="m1-1")]
        _deliver_through_one_failure(Outbox({DESK: desk}, MemorySendLedger()), replies)
    assert refused[0] and len(script.delivered) == 3  # the header, then each chunk once
    assert script.delivered[1].startswith("*Customer:* Paragraph 0") and "Paragraph 4" in script.delivered[2]
