"""Handoff for customers on SMS (Twilio) and Telegram: the rep works in Slack, the customer stays put."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from parley.webhooks.app import create_app
from tests.integration.handoff_support import PAYLOADS, Desk, SlackApi, handoff_settings, wait_until
from tests.stubs.server import WHATSAPP_WINDOW_CLOSED, Call, StubServer, serving, telegram_api, twilio_api

ACCOUNT_SID = "ACfake0000000000000000000000000001"
AUTH_TOKEN = "12345678901234567890123456789012"
TELEGRAM_TOKEN = "123456789:AAHparleyTestTokenXXXXXXXXXXXXXXXXX"
TELEGRAM_SECRET = "parley-webhook-secret_0123456789"
SEQ = itertools.count(1)


@pytest.fixture
def api() -> SlackApi:
    return SlackApi()


@pytest.fixture
def stubs(api: SlackApi) -> Iterator[dict[str, StubServer]]:
    with serving(api) as slack, serving(twilio_api()) as twilio, serving(telegram_api()) as telegram:
        yield {"slack": slack, "twilio": twilio, "telegram": telegram}


@pytest.fixture
def app(tmp_path: Path, stubs: dict[str, StubServer], database: dict[str, str]) -> Iterator[Flask]:
    app = create_app(handoff_settings(
        tmp_path, stubs["slack"], **database, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=stubs["twilio"].url, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
        TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET, TELEGRAM_API_URL=stubs["telegram"].url))
    yield app
    app.extensions["parley"].close()


def sms(client: FlaskClient, text: str, *, payload: str = "sms.txt") -> None:
    form = dict(parse_qsl((PAYLOADS / "twilio" / payload).read_text().strip(), keep_blank_values=True))
    sid = f"SM{next(SEQ):032d}"
    form.update(Body=text, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    body = urlencode(form)
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/twilio/messages", form)
    response = client.post("/twilio/messages", data=body, content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def telegram(client: FlaskClient, text: str) -> None:
    update = json.loads((PAYLOADS / "telegram" / "text.json").read_text())
    n = next(SEQ)
    update["update_id"] += n
    update["message"].update(message_id=100 + n, text=text)
    response = client.post("/telegram/webhook", data=json.dumps(update), content_type="application/json",
                           headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert response.status_code == 200


def received(server: StubServer, endpoint: str, field: str, needle: str) -> list[str]:
    def texts() -> list[str]:
        return [call.params[field] for call in server.to(endpoint)]
    found = wait_until(lambda: any(needle in text for text in texts()) and texts())
    assert found, f"{needle!r} never reached the customer; they got {texts()}"
    return found


@pytest.mark.parametrize("channel", ["sms", "telegram"])
def test_a_rep_helps_a_customer_on_their_own_channel(app: Flask, client: FlaskClient, api: SlackApi,
                                                     stubs: dict[str, StubServer], channel: str) -> None:
    say = {"sms": sms, "telegram": telegram}[channel]
    server, endpoint, field = {"sms": (stubs["twilio"], "Messages.json", "Body"),
                               "telegram": (stubs["telegram"], "sendMessage", "text")}[channel]
    customer_channel = {"sms": "twilio", "telegram": "telegram"}[channel]
    desk = Desk(client, api)

    say(client, "my order arrived broken")
    say(client, "I want to talk to a person")
    received(server, endpoint, field, "let our support team know")
    thread = desk.wait_for_thread()
    [(_, header)] = desk.headers()
    section = header["blocks"][0]["text"]["text"]
    assert f"*Customer on {customer_channel}*" in section and "my order arrived broken" in section
    assert "+12125550123" not in section  # the customer's number is masked

    say(client, "How do I reset my password?")  # muted: relayed to the rep, not answered
    desk.wait_in_thread(thread, "*Customer:* How do I reset my password?")

    desk.reply(thread, "Hi, I'm Ana. Sorry about that, a replacement is on its way.")
    got = received(server, endpoint, field, "a replacement is on its way")
    assert any(text.startswith("Ana:") or text.startswith("<b>Ana:</b>") for text in got)
    desk.reply(thread, "// replacement order R-1234 created")

    assert desk.click(thread, "resolve") == 200
    received(server, endpoint, field, "How would you rate the help")
    say(client, "4")
    desk.wait_in_thread(thread, "The customer rated the help 4/5.")
    got = received(server, endpoint, field, "Thank you for your rating!")
    assert not any("R-1234" in text or "Forgot password" in text for text in got)


def test_a_customer_channel_that_fails_to_deliver_is_reported_in_the_thread_once(
        tmp_path: Path, api: SlackApi) -> None:
    failing = {"on": False}
    ok = telegram_api()

    def flaky_telegram(call):  # noqa: ANN001, ANN202 - the stub's answer signature
        if failing["on"] and call.endpoint == "sendMessage":
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        return ok(call)

    with serving(api) as slack, serving(flaky_telegram) as server:
        app = create_app(handoff_settings(tmp_path, slack, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
                                          TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET, TELEGRAM_API_URL=server.url))
        try:
            client = app.test_client()
            desk = Desk(client, api)
            telegram(client, "talk to a person")
            thread = desk.wait_for_thread()
            failing["on"] = True
            desk.reply(thread, "Hello from support")
            desk.wait_in_thread(thread, "Could not deliver this to the customer")
            inbox = app.extensions["parley"].inbox
            assert wait_until(lambda: inbox.dead_letters, timeout=20)  # retried, then set aside: no loop
            assert sum("Could not deliver" in text for text in desk.thread(thread)) == 1
        finally:
            app.extensions["parley"].close()


@pytest.mark.parametrize("channel", ["telegram", "whatsapp"])
def test_a_rep_reply_the_platform_will_not_deliver_is_reported_at_once_with_the_reason(
        tmp_path: Path, api: SlackApi, channel: str) -> None:
    # Telegram answers 403 once the customer blocked the bot; Twilio 63016 once WhatsApp's 24-hour
    # window closed. The rep must hear it in the thread at once, with the reason, not believe it sent.
    refusing = {"on": False}

    def twilio_refusal(call: Call) -> tuple[int, dict] | None:
        return WHATSAPP_WINDOW_CLOSED if refusing["on"] and call.method == "POST" else None

    with serving(api) as slack, serving(telegram_api(blocked=lambda: refusing["on"])) as bot_api, \
            serving(twilio_api(refuse=twilio_refusal)) as twilio:
        app = create_app(handoff_settings(
            tmp_path, slack, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET,
            TELEGRAM_API_URL=bot_api.url, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            TWILIO_API_URL=twilio.url))
        try:
            client = app.test_client()
            desk = Desk(client, api)
            if channel == "telegram":
                telegram(client, "talk to a person")
            else:
                sms(client, "talk to a person", payload="whatsapp.txt")
            thread = desk.wait_for_thread()
            refusing["on"] = True
            started = time.monotonic()
            desk.reply(thread, "Hello from support")
            reason = {"telegram": "they have blocked the bot on Telegram",
                      "whatsapp": "WhatsApp lets a business reply only within 24 hours"}[channel]
            thread_texts = desk.wait_in_thread(thread, "Could not deliver")
            [notice] = [text for text in thread_texts if "deliver" in text]
            assert reason in notice and "retrying" not in notice
            assert time.monotonic() - started < 5  # at the first failure, not after the retries
            inbox = app.extensions["parley"].inbox
            assert wait_until(lambda: inbox.dead_letters, timeout=20)
            assert sum("Could not deliver" in text for text in desk.thread(thread)) == 1
        finally:
            app.extensions["parley"].close()


def test_an_unclaimed_request_reminds_the_customer_with_the_expected_wait(
        app: Flask, client: FlaskClient, api: SlackApi, stubs: dict[str, StubServer]) -> None:
    desk = Desk(client, api)
    sms(client, "I want to talk to a person")
    thread = desk.wait_for_thread()
    [reminders] = app.extensions["parley"].workers.periodic
    later = time.time() + 301  # five minutes on, nobody has claimed it
    reminders.run(now=later)
    reminders.run(now=later)  # every process runs the check; the customer still hears it once
    got = received(stubs["twilio"], "Messages.json", "Body", "usually replies within about 15 minutes")
    desk.wait_in_thread(thread, "Still unclaimed after")
    bodies = [call.params["Body"] for call in stubs["twilio"].settle("Messages.json", at_least=1)]
    assert sum("usually replies within" in body for body in bodies) == 1
    assert "let our support team know" in got[0]


PHISHING = "[Verify your account](https://evil.example/login)"
PINGS = "[x](!channel) <!here> <@U0REP0001> [[a](https://b.example)](!everyone) & co"


def test_customer_text_reaches_the_reps_channel_inert(client: FlaskClient, api: SlackApi) -> None:
    # A customer's Markdown must not become a link with a fake label, a mention or a broadcast in Slack.
    desk = Desk(client, api)
    telegram(client, f"please check {PHISHING}")
    telegram(client, "I want to talk to a person")
    thread = desk.wait_for_thread()
    [(_, header)] = desk.headers()
    section = header["blocks"][0]["text"]["text"]
    telegram(client, PHISHING)
    telegram(client, PINGS)
    posts = desk.wait_in_thread(thread, "&amp; co")
    relayed = [text for text in posts if text.startswith("*Customer:*")]
    assert len(relayed) == 2
    for text in (section, *relayed):
        assert "|Verify your account>" not in text and "<https://evil" not in text
        assert "Verify your account (https://evil.example/login)" in text or text == relayed[1]
        # No Slack control sequence (<!channel>, <@U…>, <url|label>) can be formed from a customer's text.
        assert "<!" not in text and "<@" not in text and "|" not in text
    assert relayed[1] == ("*Customer:* x (!channel) &lt;!here&gt; &lt;@U0REP0001&gt; "
                          "a (https://b.example) (!everyone) &amp; co")
