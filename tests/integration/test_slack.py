"""Slack end to end: signed Events API payloads in, chat.postMessage to a loopback Slack API out."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from slack_sdk.signature import SignatureVerifier
from sqlmodel import Session, select

from parley.channels.slack import SlackAdapter
from parley.core.envelope import Reply
from parley.stores.sql import Feedback
from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.stubs.server import StubServer, serving, slack_api

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "slack"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-fake_1234-5678-parleytest"


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def signed_headers(body: bytes, *, timestamp: float | None = None,
                   secret: str = SIGNING_SECRET) -> dict[str, str]:
    stamp = str(int(timestamp if timestamp is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def post(client: FlaskClient, body: bytes, *, content_type: str = "application/json", **headers: str):
    return client.post("/slack/events", data=body, content_type=content_type,
                       headers={**signed_headers(body), **headers})


@pytest.fixture
def slack() -> Iterator[StubServer]:
    with serving(slack_api) as server:
        yield server


@pytest.fixture
def app(tmp_path: Path, slack: StubServer) -> Iterator[Flask]:
    settings = make_settings(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                             SLACK_API_URL=slack.url + "/api/")
    app = create_app(settings)
    yield app
    app.extensions["parley"].close()


def test_url_verification_returns_the_challenge(client: FlaskClient) -> None:
    response = post(client, payload("url_verification.json"))
    assert response.status_code == 200
    assert response.get_json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_a_direct_message_is_answered_in_the_dm_in_mrkdwn(app: Flask, client: FlaskClient,
                                                          slack: StubServer) -> None:
    assert post(client, payload("message_im.json")).status_code == 200
    [call] = slack.wait_for("chat.postMessage")
    transcript = app.extensions["parley"].log.transcript("slack:T0123ACME:D0CUSTOMER1", "slack")
    assert transcript is not None and transcript[0].text == "How do I reset my password?"
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.params["channel"] == "D0CUSTOMER1"
    assert "thread_ts" not in call.params
    text = call.params["text"]
    assert "open *Sign in* and choose _Forgot password?_" in text
    assert "*Settings &gt; Security &gt; Change password*" in text
    assert text.endswith(
        "Source: <https://help.acme.example/account/reset-password|How do I reset my password?>")


def test_a_mention_is_answered_in_its_thread(app: Flask, client: FlaskClient, slack: StubServer) -> None:
    assert post(client, payload("app_mention.json")).status_code == 200
    [call] = slack.wait_for("chat.postMessage")
    conversation = "slack:T0123ACME:C0SUPPORT01:1732520100.000200"
    transcript = app.extensions["parley"].log.transcript(conversation, "slack")
    assert transcript is not None and transcript[0].text == "how long does delivery take?"  # no <@bot>
    assert call.params["channel"] == "C0SUPPORT01"
    assert call.params["thread_ts"] == "1732520100.000200"
    assert "Source:" in call.params["text"] and "deliver" in call.params["text"].lower()


def test_a_mention_with_no_question_gets_a_prompt(app: Flask, client: FlaskClient, slack: StubServer) -> None:
    # Only "@Parley": well-formed, so a 2xx (Slack turns off an app whose events keep failing),
    # and a prompt in the thread rather than silence.
    response = post(client, payload("app_mention_empty.json"))
    assert response.status_code == 200, response.get_data(as_text=True)
    [call] = slack.wait_for("chat.postMessage")
    assert call.params["thread_ts"] == "1732520160.000300"
    assert call.params["text"].startswith("Hi! I'm the Acme assistant. Ask me about")


def test_slack_retries_are_answered_once(client: FlaskClient, slack: StubServer) -> None:
    body = payload("message_im.json")
    assert post(client, body).status_code == 200
    for attempt in (1, 2, 3):
        retry = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"}
        response = post(client, body, **retry)
        assert response.status_code == 200
    assert len(slack.settle("chat.postMessage", at_least=1)) == 1


def test_bots_edits_and_joins_are_never_answered(client: FlaskClient, slack: StubServer) -> None:
    for name in ("bot_message.json", "message_changed.json", "channel_join.json"):
        assert post(client, payload(name)).status_code == 200
    # A real message afterwards: once its answer is out, nothing else was (or will be) sent.
    assert post(client, payload("message_im.json")).status_code == 200
    calls = slack.settle("chat.postMessage", at_least=1)
    assert len(calls) == 1 and "Forgot password" in calls[0].params["text"]


def test_a_channel_message_without_a_mention_is_not_answered(client: FlaskClient, slack: StubServer) -> None:
    event = json.loads(payload("message_im.json"))
    event["event"].update(channel="C0SUPPORT01", channel_type="channel")
    event["event_id"] = "Ev0CHANNEL001"
    assert post(client, json.dumps(event).encode()).status_code == 200
    assert post(client, payload("app_mention.json")).status_code == 200
    calls = slack.settle("chat.postMessage", at_least=1)
    assert [call.params.get("thread_ts") for call in calls] == ["1732520100.000200"]


def test_a_file_without_text_gets_the_text_only_reply(client: FlaskClient, slack: StubServer) -> None:
    assert post(client, payload("file_share.json")).status_code == 200
    [call] = slack.wait_for("chat.postMessage")
    assert "I can only read text for now" in call.params["text"]


def test_bad_requests_are_refused_and_never_answered(app: Flask, client: FlaskClient,
                                                     slack: StubServer) -> None:
    body = payload("message_im.json")
    stale = signed_headers(body, timestamp=time.time() - 6 * 60)
    wrong = signed_headers(body, secret="not-the-signing-secret")
    form = b"payload=%7B%7D"
    cases = [
        (client.post("/slack/events", data=body, content_type="application/json"), 401),
        (client.post("/slack/events", data=body, content_type="application/json", headers=stale), 401),
        (client.post("/slack/events", data=body, content_type="application/json", headers=wrong), 401),
        (client.post("/slack/events", data=body + b" ", content_type="application/json",
                     headers=signed_headers(body)), 401),
        (post(client, b"{not json"), 400),
        (post(client, b'{"type": "event_callback", "event_id": "Ev1"}'), 400),
        (post(client, form, content_type="application/x-www-form-urlencoded"), 415),
        (post(client, b"x" * 70_000), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.status_code, response.get_data())
        assert "Traceback" not in response.get_data(as_text=True)
    assert app.extensions["parley"].inbox.depth() == 0
    assert slack.to("chat.postMessage") == []


def test_slack_is_off_without_its_secrets(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), start_workers=False)
    response = app.test_client().post("/slack/events", data=payload("message_im.json"),
                                      content_type="application/json")
    assert response.status_code == 404
    assert "slack" not in app.extensions["parley"].adapters


def test_long_replies_are_split_under_the_limit_in_order(slack: StubServer) -> None:
    adapter = SlackAdapter(bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=slack.url + "/api",
                           max_text_chars=2000)
    paragraphs = [f"Paragraph {i}: " + "word " * 2000 for i in range(5)]
    adapter.send([Reply(conversation_id="slack:T:D", channel="slack", text="\n\n".join(paragraphs),
                        route={"channel": "D0CUSTOMER1", "thread_ts": "1.2"})])
    calls = slack.to("chat.postMessage")
    assert len(calls) == 2
    assert all(len(call.params["text"]) <= 40_000 and call.params["thread_ts"] == "1.2" for call in calls)
    assert calls[0].params["text"].startswith("Paragraph 0") and "Paragraph 4" in calls[1].params["text"]


def press(client: FlaskClient, name: str, **action: str):
    """A customer's button press, as Slack posts it: a signed form with the JSON payload."""
    body = json.loads(payload(name))
    body["actions"][0].update(action)
    form = urlencode({"payload": json.dumps(body)}).encode()
    return client.post("/slack/interactions", data=form, content_type="application/x-www-form-urlencoded",
                       headers=signed_headers(form))


def test_an_answer_is_block_kit_with_its_source_linked_and_thumbs(app: Flask, client: FlaskClient,
                                                                   slack: StubServer) -> None:
    assert post(client, payload("message_im.json")).status_code == 200
    [call] = slack.wait_for("chat.postMessage")  # the stub refuses blocks Slack would refuse
    section, sources, thumbs = call.params["blocks"]
    assert section["type"] == "section"
    assert "open *Sign in* and choose _Forgot password?_" in section["text"]["text"]
    assert sources == {"type": "context", "block_id": "parley_sources", "elements": [{
        "type": "mrkdwn",
        "text": "Source: <https://help.acme.example/account/reset-password|How do I reset my password?>"}]}
    assert [(b["action_id"], b["text"]["text"]) for b in thumbs["elements"]] == [
        ("parley_feedback_up", "👍 Helpful"), ("parley_feedback_down", "👎 Not helpful")]
    answer_id = thumbs["elements"][0]["value"]
    transcript = app.extensions["parley"].log.transcript("slack:T0123ACME:D0CUSTOMER1", "slack")
    assert transcript is not None and transcript[-1].id == answer_id

    # The customer presses 👍: a signed block_actions payload, stored as feedback on that answer.
    assert press(client, "block_actions_feedback.json", value=answer_id).status_code == 200
    with Session(app.extensions["parley"].log.database) as session:
        rows = session.scalars(select(Feedback).where(Feedback.message_id == answer_id)).all()
    assert [(row.conversation_id, row.score) for row in rows] == [("slack:T0123ACME:D0CUSTOMER1", 1)]
    assert press(client, "block_actions_feedback.json", value=answer_id, action_id="parley_feedback_down",
                 action_ts="1732520231.1").status_code == 200
    with Session(app.extensions["parley"].log.database) as session:
        assert [row.score for row in session.scalars(select(Feedback)).all()] == [-1]  # changed, not added


def test_a_customer_whose_slack_speaks_french_reads_the_source_and_thumbs_in_french(
        client: FlaskClient, slack: StubServer) -> None:
    event = json.loads(payload("message_im.json"))
    event["event"].update(text="reset password", user_locale="fr-FR")  # two words: the locale decides
    assert post(client, json.dumps(event).encode()).status_code == 200
    [call] = slack.wait_for("chat.postMessage")
    _, sources, thumbs = call.params["blocks"]
    assert sources["elements"][0]["text"].startswith("Source : <https://help.acme.example/account/reset-password|")
    assert [b["text"]["text"] for b in thumbs["elements"]] == ["👍 Utile", "👎 Pas utile"]


def test_quick_replies_are_buttons_and_a_press_is_the_next_message(app: Flask, client: FlaskClient,
                                                                     slack: StubServer) -> None:
    hello = json.loads(payload("message_im.json"))
    hello["event"]["text"], hello["event_id"] = "hello", "Ev0DMHELLO01"
    assert post(client, json.dumps(hello).encode()).status_code == 200
    [greeting] = slack.wait_for("chat.postMessage")
    buttons = greeting.params["blocks"][-1]
    assert buttons["block_id"] == "parley_quick_replies"
    assert [b["value"] for b in buttons["elements"]] == [
        "Track my order", "Start a return", "Reset my password", "Talk to a person"]

    # Pressed, through the inbox like a typed message, answered in the same DM; a retry is deduplicated.
    assert press(client, "block_actions_quick_reply.json").status_code == 200
    assert press(client, "block_actions_quick_reply.json").status_code == 200
    answers = slack.settle("chat.postMessage", at_least=2)
    assert len(answers) == 2 and answers[1].params["channel"] == "D0CUSTOMER1"
    assert "Forgot password" in answers[1].params["text"]
    transcript = app.extensions["parley"].log.transcript("slack:T0123ACME:D0CUSTOMER1", "slack")
    assert transcript is not None
    assert [m.text for m in transcript if m.direction == "in"] == ["hello", "Reset my password"]


def test_a_forged_or_broken_press_is_refused(client: FlaskClient, slack: StubServer) -> None:
    form = urlencode({"payload": payload("block_actions_quick_reply.json").decode()}).encode()
    forged = client.post("/slack/interactions", data=form, content_type="application/x-www-form-urlencoded",
                         headers=signed_headers(form, secret="another-secret"))
    assert forged.status_code == 401
    broken = json.loads(payload("block_actions_quick_reply.json"))
    del broken["user"]
    assert press_raw(client, broken).status_code == 400
    assert slack.settle("chat.postMessage", quiet=0.3) == []


def press_raw(client: FlaskClient, body: dict):
    form = urlencode({"payload": json.dumps(body)}).encode()
    return client.post("/slack/interactions", data=form, content_type="application/x-www-form-urlencoded",
                       headers=signed_headers(form))
