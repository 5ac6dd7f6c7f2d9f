"""The public surface: only channel routes answer; admin surfaces want the token; input limits hold.

Every refusal is a short JSON error with a 4xx status: no stack trace, no detail, no secret.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.stubs.server import StubServer, serving, twilio_api

ADMIN_TOKEN = "surface-admin-token-7d2e41c9"
ACCOUNT_SID, AUTH_TOKEN = "ACfake0000000000000000000000000088", "surface-twilio-token-0123456789ab"
FORM = "application/x-www-form-urlencoded"
TWILIO_URL = "http://localhost/twilio/messages"


@pytest.fixture(scope="module")
def twilio() -> Iterator[StubServer]:
    with serving(twilio_api()) as server:
        yield server


def build(tmp_path: Path, twilio: StubServer, **environ: str) -> Flask:
    return create_app(make_settings(tmp_path, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                                    TWILIO_API_URL=twilio.url, **environ))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, twilio: StubServer) -> Iterator[Flask]:
    # One app for the module: every test sends its own messages, and most only read.
    app = build(tmp_path_factory.mktemp("surface"), twilio, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN)
    yield app
    app.extensions["parley"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def twilio_post(client: FlaskClient, form: dict[str, str]):  # type: ignore[no-untyped-def]
    signature = RequestValidator(AUTH_TOKEN).compute_signature(TWILIO_URL, form)
    return client.post("/twilio/messages", data=urlencode(form), content_type=FORM,
                       headers={"X-Twilio-Signature": signature})


def sms(body: str) -> dict[str, str]:
    return {"From": "+12125550199", "To": "+14155550100", "Body": body, "MessageSid": f"SM{uuid.uuid4().hex}",
            "AccountSid": ACCOUNT_SID, "NumMedia": "0"}


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/admin"), ("GET", "/static/widget/widget.js"), ("GET", "/.env"),
    ("GET", "/.git/config"), ("GET", "/console"), ("GET", "/debug"), ("POST", "/wp-login.php"),
    ("GET", "/widget/../../etc/passwd"), ("POST", "/slack"), ("POST", "/telegram/webhook/extra"),
    ("GET", "/api/v1/conversations"), ("POST", "/admin/conversations")])
def test_anything_that_is_not_a_route_is_a_plain_404(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method)
    assert (response.status_code, response.get_json()) == (404, {"error": "not found"})


@pytest.mark.parametrize("path", ["/slack/events", "/telegram/webhook", "/slack/interactions"])
def test_channels_without_credentials_do_not_exist(client: FlaskClient, path: str) -> None:
    assert client.post(path, json={}).status_code == 404


@pytest.mark.parametrize("path", ["/admin/export", "/metrics"])
@pytest.mark.parametrize("authorization", [None, "", "Bearer", f"Bearer {ADMIN_TOKEN[:-1]}",
                                           f"Bearer {ADMIN_TOKEN}x", f"Basic {ADMIN_TOKEN}", ADMIN_TOKEN + " ",
                                           ADMIN_TOKEN, f"Token {ADMIN_TOKEN}", f"Bearer{ADMIN_TOKEN}"])
def test_admin_surfaces_refuse_a_missing_or_wrong_token(client: FlaskClient, path: str,
                                                        authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get(path, headers=headers)
    assert (response.status_code, response.get_json()) == (401, {"error": "invalid request"})


@pytest.mark.parametrize("path", ["/admin/export", "/metrics"])
@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])  # the scheme is case-insensitive (RFC 9110)
def test_admin_surfaces_answer_the_right_token(client: FlaskClient, path: str, scheme: str) -> None:
    assert client.get(path, headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"}).status_code == 200


def test_without_a_token_the_admin_api_does_not_exist(tmp_path: Path, twilio: StubServer) -> None:
    app = build(tmp_path, twilio)
    try:
        response = app.test_client().post("/admin/conversations/w12345678/messages", json={"text": "hi"},
                                          headers={"Authorization": "Bearer "})
        assert (response.status_code, response.get_json()) == (404, {"error": "not found"})
    finally:
        app.extensions["parley"].close()


@pytest.mark.parametrize("path,content_type", [
    ("/widget/api/messages", "application/json"), ("/widget/api/feedback", "application/json"),
    ("/twilio/messages", FORM), ("/admin/conversations/w12345678/messages", "application/json")])
def test_a_body_over_the_limit_is_413(client: FlaskClient, app: Flask, path: str, content_type: str) -> None:
    limit = app.extensions["parley"].settings.limits.max_body_bytes
    response = client.post(path, data=b"x" * (limit + 1), content_type=content_type,
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Twilio-Signature": "x"})
    assert (response.status_code, response.get_json()) == (413, {"error": "request entity too large"})


def test_a_form_with_too_many_fields_is_413(client: FlaskClient, app: Flask) -> None:
    limit = app.extensions["parley"].settings.limits.max_form_fields
    form = {**sms("hi"), **{f"Extra{n}": "x" for n in range(limit)}}
    response = twilio_post(client, form)
    assert (response.status_code, response.get_json()) == (413, {"error": f"too many form fields (max {limit})"})


def test_a_widget_message_over_the_text_limit_is_413_and_says_the_limit(client: FlaskClient, app: Flask) -> None:
    limit = app.extensions["parley"].settings.limits.max_text_chars
    response = client.post("/widget/api/messages", json={"text": "a" * (limit + 1)})
    assert (response.status_code, response.get_json()) == (413, {"error": f"message too long (max {limit} characters)"})


def test_a_long_sms_is_answered_from_its_start(client: FlaskClient, app: Flask, twilio: StubServer) -> None:
    limit = app.extensions["parley"].settings.limits.max_text_chars
    form = sms("How do I reset my password? " + "x" * (2 * limit))
    assert twilio_post(client, form).status_code == 200
    assert [c for c in twilio.wait_for("Messages.json") if c.params["To"] == form["From"]]
    transcript = app.extensions["parley"].log.transcript(f"twilio:{form['From']}:{form['To']}", "twilio")
    assert transcript is not None and len(transcript[0].text) <= limit


def test_text_is_stored_nfc_normalised_without_control_characters(client: FlaskClient, app: Flask) -> None:
    decomposed = "Cafe\u0301 order\u0000 status\u200b\u0007?"
    response = client.post("/widget/api/messages", json={"text": decomposed})
    assert response.status_code == 200
    transcript = app.extensions["parley"].log.transcript(response.get_json()["conversation_id"], "widget")
    assert transcript is not None
    stored = transcript[0].text
    assert stored == unicodedata.normalize("NFC", stored) and "Café" in stored
    assert "\u0000" not in stored and "\u0007" not in stored


@pytest.mark.parametrize("body", [b"[" * 20_000 + b"]" * 20_000, b"\xff\xfe not utf-8", b"{\"text\": "])
def test_broken_json_is_400_not_a_crash(client: FlaskClient, body: bytes) -> None:
    response = client.post("/widget/api/messages", data=body, content_type="application/json")
    assert response.status_code == 400 and "Traceback" not in response.get_data(as_text=True)
