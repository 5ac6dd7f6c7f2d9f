"""Every adapter's parse under random bodies, correctly signed: a clear 4xx or 2xx, never a 500.

The bodies pass verification (signed with the official helpers, or carrying the secret token), so
what is fuzzed is everything after it: parsing, cleaning, the inbox. Workers are not started, so
nothing is answered; the widget stops waiting for its answer at once (202 pending).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from parley.channels.slack_desk import ACTIONS
from parley.core.envelope import Envelope
from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.fuzz.strategies import ID, MESSAGE_TEXT, TS, json_value, maybe, optional_fields, text
from tests.stubs.server import StubServer, serving, slack_api, telegram_api, twilio_api

SLACK_SECRET = "fuzz-signing-secret-0123456789abcdef"
TWILIO_SID, TWILIO_TOKEN = "ACfake0000000000000000000000000042", "fuzz-twilio-auth-token-0123456789"
TELEGRAM_TOKEN, TELEGRAM_SECRET = "42:AAHfuzzTokenXXXXXXXXXXXXXXXXXXXXXXX", "fuzz-telegram-secret_0123"
ADMIN_TOKEN = "fuzz-admin-token-0123456789"
CONVERSATION = "wfuzzconversation01"
DESK, THREAD = "C0DESK0001", "1700000000.000100"
# A clear refusal or an acknowledgement; 500 (a crash) and 502/503 (a store or API down) are not
# answers a malformed body may cause.
CLEAR = {200, 201, 202, 400, 401, 403, 404, 413, 415}
# PARLEY_FUZZ_EXAMPLES=2000 for a longer hunt; the suite's default keeps this file to seconds.
FUZZ = settings(max_examples=int(os.environ.get("PARLEY_FUZZ_EXAMPLES", "60")), deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def stubs() -> Iterator[dict[str, StubServer]]:
    with serving(slack_api) as slack, serving(twilio_api()) as twilio, serving(telegram_api()) as telegram:
        yield {"slack": slack, "twilio": twilio, "telegram": telegram}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, stubs: dict[str, StubServer]) -> Iterator[Flask]:
    base = make_settings(
        tmp_path_factory.mktemp("fuzz"), SLACK_BOT_TOKEN="xoxb-fake_fuzz", SLACK_SIGNING_SECRET=SLACK_SECRET,
        SLACK_HANDOFF_CHANNEL=DESK, SLACK_API_URL=stubs["slack"].url + "/api/",
        TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=stubs["twilio"].url,
        TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET,
        TELEGRAM_API_URL=stubs["telegram"].url, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN)
    # Hundreds of requests from one address and one sender: the flood limits are tested elsewhere.
    settings_ = base.model_copy(update={
        "server": base.server.model_copy(update={"reply_timeout_seconds": 0.01}),
        "limits": base.limits.model_copy(update={"messages_per_minute_per_sender": 10**6,
                                                 "messages_per_minute_per_conversation": 10**6}),
        "channels": base.channels.model_copy(update={"widget": base.channels.widget.model_copy(
            update={"messages_per_minute": 10**6, "messages_per_minute_per_ip": 10**6})})})
    app = create_app(settings_, start_workers=False)
    services = app.extensions["parley"]
    # A known reps' thread, so desk events and buttons reach the conversation lookup and beyond.
    services.adapters["desk"].directory.remember(conversation_id=CONVERSATION, handoff=1,
                                                 desk_channel=DESK, thread_ts=THREAD)
    # And a widget conversation, for the admin API and the widget's follow-up messages.
    services.log.record_inbound(Envelope(channel="widget", conversation_id=CONVERSATION, sender=CONVERSATION,
                                         message_id=f"{CONVERSATION}:first", text="hello"))
    yield app
    services.close()


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def assert_clear(response) -> None:  # type: ignore[no-untyped-def]
    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    assert response.status_code in CLEAR, (response.status_code, response.get_data(as_text=True)[:300])
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and SLACK_SECRET not in body and TWILIO_TOKEN not in body


# --- Slack: Events API and the reps' buttons and slash command ---

slack_event = optional_fields(
    type=st.sampled_from(["message", "app_mention", "reaction_added"]),
    channel=st.sampled_from(["D0CUSTOMER1", "C0GENERAL1", DESK]), channel_type=st.sampled_from(["im", "channel"]),
    user=ID, text=MESSAGE_TEXT, ts=TS, thread_ts=st.just(THREAD) | TS, event_ts=TS,
    subtype=st.sampled_from(["file_share", "message_changed", "bot_message", "thread_broadcast"]),
    bot_id=st.just("B0BOT"), team=st.just("T0ACME"),
    files=st.lists(optional_fields(mimetype=st.sampled_from(["image/png", "application/pdf"])), max_size=3),
    user_profile=optional_fields(display_name=text, real_name=text))
slack_body = optional_fields(
    type=st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]),
    event_id=st.text(min_size=1, max_size=16), team_id=st.just("T0ACME"), event=slack_event,
    challenge=text, authorizations=st.lists(optional_fields(user_id=ID), max_size=2))


def slack_headers(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    try:
        signature = SignatureVerifier(SLACK_SECRET).generate_signature(timestamp=stamp, body=body)
    except UnicodeDecodeError:  # the SDK signs text only; Slack's scheme itself is over bytes
        digest = hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
        signature = f"v0={digest.hexdigest()}"
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


@FUZZ
@given(body=slack_body | json_value)
def test_slack_events_never_crash(client: FlaskClient, body: object) -> None:
    data = json.dumps(body).encode()
    assert_clear(client.post("/slack/events", data=data, content_type="application/json",
                             headers=slack_headers(data)))


@FUZZ
@given(data=st.binary(max_size=300))
def test_slack_events_with_any_bytes_never_crash(client: FlaskClient, data: bytes) -> None:
    assert_clear(client.post("/slack/events", data=data, content_type="application/json",
                             headers=slack_headers(data)))


# The customers' buttons under answers (channels/slack_buttons.py) share the endpoint.
CUSTOMER_ACTIONS = ["parley_quick_reply_0", "parley_feedback_up", "parley_feedback_down"]
interaction = optional_fields(
    type=st.sampled_from(["block_actions", "view_submission"]), trigger_id=text,
    actions=st.lists(optional_fields(action_id=st.sampled_from(sorted(ACTIONS) + CUSTOMER_ACTIONS), action_ts=TS,
                                     value=text), max_size=2),
    user=optional_fields(id=ID, name=text, username=text),
    container=optional_fields(thread_ts=st.just(THREAD) | TS, message_ts=TS, channel_id=st.just(DESK)),
    channel=optional_fields(id=st.just(DESK)))


@FUZZ
@given(payload=interaction | json_value, raw=st.booleans())
def test_slack_interactions_never_crash(client: FlaskClient, payload: object, raw: bool) -> None:
    data = (urlencode({"payload": json.dumps(payload)}) if not raw else str(payload)).encode()
    assert_clear(client.post("/slack/interactions", data=data, content_type="application/x-www-form-urlencoded",
                             headers=slack_headers(data)))


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["text", "user_id", "command", "team_id"]) | st.text(max_size=8),
                            st.sampled_from(["ask refund", "label returns", "label nosuch", "help"]) | text,
                            max_size=5))
def test_slack_commands_never_crash(client: FlaskClient, form: dict[str, str]) -> None:
    data = urlencode(form).encode()
    assert_clear(client.post("/slack/commands", data=data, content_type="application/x-www-form-urlencoded",
                             headers=slack_headers(data)))


# --- Twilio: SMS and WhatsApp form posts ---

TWILIO_FIELDS = ["From", "To", "MessageSid", "Body", "NumMedia", "MediaContentType0", "MediaContentType1",
                 "AccountSid", "ProfileName", "WaId", "FromCountry", "MessagingServiceSid"]
twilio_value = st.sampled_from(["+12125550123", "whatsapp:+12125550123", "SM0123", "0", "2", "99999999999999",
                                "image/jpeg", "How do I reset my password?"]) | st.text(max_size=200)
twilio_form = st.dictionaries(st.sampled_from(TWILIO_FIELDS) | st.text(min_size=1, max_size=10), twilio_value,
                              max_size=14) | st.fixed_dictionaries(
    {"From": twilio_value, "To": twilio_value, "MessageSid": st.text(min_size=1, max_size=34)},
    optional={name: twilio_value for name in TWILIO_FIELDS[3:]})


@FUZZ
@given(form=twilio_form)
def test_twilio_messages_never_crash(client: FlaskClient, form: dict[str, str]) -> None:
    signature = RequestValidator(TWILIO_TOKEN).compute_signature("http://localhost/twilio/messages", form)
    assert_clear(client.post("/twilio/messages", data=urlencode(form),
                             content_type="application/x-www-form-urlencoded",
                             headers={"X-Twilio-Signature": signature}))


# --- Telegram: Bot API updates ---

telegram_user = optional_fields(id=st.integers(), is_bot=st.booleans(), first_name=text, language_code=text)
telegram_message = optional_fields(
    message_id=st.integers(), date=st.integers(min_value=0, max_value=2**31),
    chat=optional_fields(id=st.integers(), type=st.sampled_from(["private", "group", "supergroup"])),
    text=MESSAGE_TEXT, caption=text, is_topic_message=st.booleans(), message_thread_id=st.integers(),
    photo=st.lists(optional_fields(file_id=text, file_unique_id=text, width=st.integers(),
                                   height=st.integers()), max_size=2),
    sticker=json_value, location=optional_fields(latitude=st.floats(), longitude=st.floats()))
telegram_message = telegram_message.map(lambda m: m) | st.fixed_dictionaries(
    {"message_id": st.integers(1, 10**6), "date": st.integers(0, 2**31),
     "chat": st.fixed_dictionaries({"id": st.integers(), "type": st.just("private")}),
     "from": st.fixed_dictionaries({"id": st.integers(), "is_bot": st.booleans(), "first_name": text})},
    optional={"text": MESSAGE_TEXT, "caption": text, "message_thread_id": maybe(st.integers()),
              "is_topic_message": maybe(st.booleans())})
telegram_update = optional_fields(update_id=st.integers(), message=telegram_message,
                                  edited_message=telegram_message, channel_post=telegram_message) | \
    st.fixed_dictionaries({"update_id": st.integers(1, 2**31)},
                          optional={"message": telegram_message, "edited_message": telegram_message})


@FUZZ
@given(update=telegram_update | json_value)
def test_telegram_updates_never_crash(client: FlaskClient, update: object) -> None:
    assert_clear(client.post("/telegram/webhook", data=json.dumps(update), content_type="application/json",
                             headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}))


# --- The widget's JSON API and the admin API ---

ID_LIKE = st.from_regex(r"\A[A-Za-z0-9_-]{8,20}\Z") | st.just(CONVERSATION)
widget_body = optional_fields(text=MESSAGE_TEXT, conversation_id=ID_LIKE, client_message_id=ID_LIKE) | \
    st.fixed_dictionaries({"text": MESSAGE_TEXT}, optional={"conversation_id": maybe(ID_LIKE),
                                                            "client_message_id": maybe(ID_LIKE)})


@FUZZ
@given(body=widget_body | json_value)
def test_widget_messages_never_crash(client: FlaskClient, body: object) -> None:
    assert_clear(client.post("/widget/api/messages", data=json.dumps(body), content_type="application/json",
                             headers=holder_of(client, body)))


@FUZZ
@given(body=optional_fields(conversation_id=ID_LIKE, message_id=text, score=st.sampled_from([1, -1]))
       | json_value)
def test_widget_feedback_never_crashes(client: FlaskClient, body: object) -> None:
    assert_clear(client.post("/widget/api/feedback", data=json.dumps(body), content_type="application/json",
                             headers=holder_of(client, body)))


def holder_of(client: FlaskClient, body: object) -> dict[str, str]:
    """The conversation's secret, as its browser would send it: the fuzzing gets past the check."""
    conversation_id = body.get("conversation_id") if isinstance(body, dict) else None
    if not isinstance(conversation_id, str):
        return {}
    keys = client.application.extensions["parley"].widget.keys
    return {"X-Parley-Secret": keys.secret(conversation_id)}


@FUZZ
@given(conversation=st.just(CONVERSATION) | ID_LIKE | st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s),
       body=optional_fields(text=MESSAGE_TEXT, author=text) | json_value)
def test_admin_messages_never_crash(client: FlaskClient, conversation: str, body: object) -> None:
    assert_clear(client.post(f"/admin/conversations/{conversation}/messages", data=json.dumps(body),
                             content_type="application/json",
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}))


@FUZZ
@given(args=st.dictionaries(st.sampled_from(["format", "redact", "since", "until", "channel"]),
                            st.sampled_from(["jsonl", "csv", "true", "false", "2026-01-01"]) | text, max_size=5))
def test_admin_export_never_crashes(client: FlaskClient, args: dict[str, str]) -> None:
    response = client.get("/admin/export", query_string=args, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert_clear(response)


@pytest.mark.parametrize("path,content_type", [
    ("/slack/events", "application/json"), ("/telegram/webhook", "application/json"),
    ("/widget/api/messages", "application/json"), ("/widget/api/feedback", "application/json")])
def test_json_nested_past_python_s_recursion_limit_is_a_400(client: FlaskClient, path: str,
                                                            content_type: str) -> None:
    data = b"[" * 20_000 + b"]" * 20_000  # 40 KB: within the body limit
    headers = {**slack_headers(data), "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    response = client.post(path, data=data, content_type=content_type, headers=headers)
    assert response.status_code == 400
