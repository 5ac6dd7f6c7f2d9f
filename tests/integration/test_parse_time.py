"""What the webhooks make of a platform's message at parse time, the same on every channel.

Values a worker could not store are refused there: never acknowledged, then failed five times in
the SQL write and dead-lettered (or a widget request held for its timeout). JSON may carry a lone
surrogate (``"\\ud800"``), which no UTF-8 database takes; PostgreSQL takes no NUL character
either; a Slack ``ts`` of ``inf`` or ``nan`` is no time at all. And a platform's long message is
clipped to ``limits.max_text_chars`` once normalised, as the README says, never refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.integration.handoff_support import PAYLOADS, signed, wait_until
from tests.stubs.server import StubServer, serving, slack_api, telegram_api, twilio_api

SLACK = {"SLACK_BOT_TOKEN": "xoxb-fake_1234-5678-parleytest", "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5"}
TWILIO = {"TWILIO_ACCOUNT_SID": "ACfake0000000000000000000000000001",
          "TWILIO_AUTH_TOKEN": "12345678901234567890123456789012"}
TELEGRAM = {"TELEGRAM_BOT_TOKEN": "123456789:AAHparleyTestTokenXXXXXXXXXXXXXXXXX",
            "TELEGRAM_SECRET_TOKEN": "parley-webhook-secret_0123456789"}
LONE = "\\ud800"  # as it appears in the JSON body


@pytest.fixture
def stubs() -> Iterator[dict[str, StubServer]]:
    with serving(slack_api) as slack, serving(twilio_api()) as twilio, serving(telegram_api()) as telegram:
        yield {"slack": slack, "twilio": twilio, "telegram": telegram}


@pytest.fixture
def app(tmp_path: Path, stubs: dict[str, StubServer], database: dict[str, str]) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, **database, **SLACK, **TWILIO, **TELEGRAM,
                                   SLACK_API_URL=stubs["slack"].url + "/api/", TWILIO_API_URL=stubs["twilio"].url,
                                   TELEGRAM_API_URL=stubs["telegram"].url))
    yield app
    app.extensions["parley"].close()


def slack_event(**event: str) -> bytes:
    body = json.loads((PAYLOADS / "slack" / "message_im.json").read_text())
    body["event"].update(event)
    return json.dumps(body).encode()


def slack(client: FlaskClient, body: bytes) -> int:
    return client.post("/slack/events", data=body, content_type="application/json", headers=signed(body)).status_code


def telegram(client: FlaskClient, body: bytes) -> int:
    return client.post("/telegram/webhook", data=body, content_type="application/json",
                       headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM["TELEGRAM_SECRET_TOKEN"]}).status_code


def twilio(client: FlaskClient, **fields: str) -> int:
    form = dict(parse_qsl((PAYLOADS / "twilio" / "sms.txt").read_text().strip(), keep_blank_values=True))
    form.update(fields)
    signature = RequestValidator(TWILIO["TWILIO_AUTH_TOKEN"]).compute_signature(
        "http://localhost/twilio/messages", form)
    return client.post("/twilio/messages", data=urlencode(form), content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature}).status_code


def widget(client: FlaskClient, body: str) -> int:
    return client.post("/widget/api/messages", data=body, content_type="application/json").status_code


def test_unstorable_values_are_refused_at_parse_time_on_every_channel(
        app: Flask, client: FlaskClient, stubs: dict[str, StubServer]) -> None:
    text = (PAYLOADS / "telegram" / "text.json").read_text()
    refused = {
        "widget text": widget(client, '{"text": "hello ' + LONE + '"}'),
        "slack text": slack(client, slack_event(text="reset " + "\ud800")),
        "slack user": slack(client, slack_event(user="U0\ud800")),
        "slack ts inf": slack(client, slack_event(ts="inf")),
        "slack ts nan": slack(client, slack_event(ts="nan")),
        "slack ts past year 9999": slack(client, slack_event(ts="999999999999.000100")),
        "slack thread_ts": slack(client, slack_event(thread_ts="-inf")),
        "telegram text": telegram(client, text.replace("How do I reset my password?", "reset " + LONE).encode()),
        "telegram caption": telegram(client, (PAYLOADS / "telegram" / "photo.json").read_text().replace(
            '"photo"', '"caption": "look ' + LONE + '", "photo"').encode()),
        "twilio sender": twilio(client, From="+1212555\x000123"),
    }
    assert refused == {case: 400 for case in refused}
    services = app.extensions["parley"]
    assert services.inbox.depth() == 0
    # Nothing was taken to fail later: a good message behind them is answered, and nothing dead-lettered.
    assert slack(client, (PAYLOADS / "slack" / "message_im.json").read_bytes()) == 200
    assert wait_until(lambda: stubs["slack"].to("chat.postMessage"))
    assert services.inbox.dead_letters == []
    assert stubs["telegram"].to("sendMessage") == [] and stubs["twilio"].to("Messages.json") == []


def test_a_reps_message_through_the_admin_api_is_checked_alike(tmp_path: Path, database: dict[str, str]) -> None:
    app = create_app(make_settings(tmp_path, **database, PARLEY_ADMIN_TOKEN="adm-unicode-0001"))
    try:
        client = app.test_client()
        conversation_id = client.post("/widget/api/messages", json={"text": "hello"}).get_json()["conversation_id"]
        url, admin = f"/admin/conversations/{conversation_id}/messages", {"Authorization": "Bearer adm-unicode-0001"}
        for body in ('{"text": "on my way ' + LONE + '", "author": "Dana"}',
                     '{"text": "on my way", "author": "Dana ' + LONE + '"}'):
            response = client.post(url, data=body, content_type="application/json", headers=admin)
            assert (response.status_code, response.get_json()) == (400, {"error": "message is not valid Unicode text"})
        assert client.post(url, json={"text": "on my way", "author": "Dana"}, headers=admin).status_code == 201
    finally:
        app.extensions["parley"].close()


def test_long_platform_messages_are_clipped_after_normalising(
        app: Flask, client: FlaskClient, stubs: dict[str, StubServer]) -> None:
    # U+0958 is one character that NFC writes as two: at the limit before normalising, twice over
    # it after. The platform cannot be told "too long" (it retries, then drops the message).
    limit = app.extensions["parley"].settings.limits.max_text_chars
    long = "\u0958" * limit
    update = json.loads((PAYLOADS / "telegram" / "text.json").read_text())
    update["message"]["text"] = long
    assert slack(client, slack_event(text=long)) == 200
    assert telegram(client, json.dumps(update).encode()) == 200
    assert twilio(client, Body=long) == 200
    assert wait_until(lambda: stubs["slack"].to("chat.postMessage") and stubs["telegram"].to("sendMessage")
                      and stubs["twilio"].to("Messages.json"))
    log = app.extensions["parley"].log
    for conversation, channel in (("slack:T0123ACME:D0CUSTOMER1", "slack"), ("telegram:5550001", "telegram"),
                                  ("twilio:+12125550123:+14155550100", "twilio")):
        transcript = log.transcript(conversation, channel)
        assert transcript is not None, channel
        assert transcript[0].text == "\u0915\u093c" * (limit // 2), channel
