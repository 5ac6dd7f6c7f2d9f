"""Twilio end to end: signed SMS/MMS/WhatsApp webhooks in, Messages REST calls to a loopback stub out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from parley.channels.twilio_sms import TwilioAdapter
from parley.core.envelope import Reply
from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.stubs.server import StubServer, serving, twilio_api

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "twilio"
ACCOUNT_SID = "ACfake0000000000000000000000000001"
AUTH_TOKEN = "12345678901234567890123456789012"
LOCAL_URL = "http://localhost/twilio/messages"
FORM = "application/x-www-form-urlencoded"


def payload(name: str) -> str:
    return (PAYLOADS / name).read_text().strip()


def signature(url: str, body: str, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, dict(parse_qsl(body, keep_blank_values=True)))


def post(client: FlaskClient, body: str, *, url: str = LOCAL_URL, **headers: str):
    return client.post("/twilio/messages", data=body, content_type=FORM,
                       headers={"X-Twilio-Signature": signature(url, body), **headers})


@pytest.fixture
def twilio() -> Iterator[StubServer]:
    with serving(twilio_api()) as server:
        yield server


def twilio_app(tmp_path: Path, twilio: StubServer, **environ: str) -> Flask:
    return create_app(make_settings(tmp_path, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
                                    TWILIO_API_URL=twilio.url, **environ))


@pytest.fixture
def app(tmp_path: Path, twilio: StubServer) -> Iterator[Flask]:
    app = twilio_app(tmp_path, twilio)
    yield app
    app.extensions["parley"].close()


def test_an_sms_is_acked_with_empty_twiml_and_answered_by_rest(client: FlaskClient,
                                                                twilio: StubServer) -> None:
    response = post(client, payload("sms.txt"))
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    [call] = twilio.wait_for("Messages.json")
    assert call.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert call.headers["Authorization"].startswith("Basic ")
    assert (call.params["To"], call.params["From"]) == ("+12125550123", "+14155550100")
    body = call.params["Body"]
    assert "open Sign in and choose Forgot password?" in body and "**" not in body
    # The article's url: as a plain URL, what an SMS can show.
    assert body.endswith("Source: How do I reset my password? "
                         "(https://help.acme.example/account/reset-password)")


def test_whatsapp_is_answered_from_the_whatsapp_sender(app: Flask, client: FlaskClient,
                                                       twilio: StubServer) -> None:
    assert post(client, payload("whatsapp.txt")).status_code == 200
    [call] = twilio.wait_for("Messages.json")
    conversation = "twilio:whatsapp:+34600111222:whatsapp:+14155238886"
    assert app.extensions["parley"].log.transcript(conversation, "twilio") is not None
    assert (call.params["To"], call.params["From"]) == ("whatsapp:+34600111222", "whatsapp:+14155238886")
    assert "Source:" in call.params["Body"]


def test_an_mms_without_text_gets_the_text_only_reply(client: FlaskClient, twilio: StubServer) -> None:
    assert post(client, payload("mms.txt")).status_code == 200
    [call] = twilio.wait_for("Messages.json")
    assert "I can only read text for now" in call.params["Body"]


@pytest.mark.parametrize("count", ["\u00b9", "-1", "many"])
def test_a_num_media_that_is_no_count_is_read_as_none(client: FlaskClient, twilio: StubServer,
                                                       count: str) -> None:
    body = payload("sms.txt").replace("NumMedia=0", f"NumMedia={quote(count)}")
    assert f"NumMedia={quote(count)}" in body
    assert post(client, body).status_code == 200
    [call] = twilio.wait_for("Messages.json")
    assert "open Sign in and choose Forgot password?" in call.params["Body"]


def test_a_whatsapp_location_gets_the_text_only_reply(app: Flask, client: FlaskClient,
                                                      twilio: StubServer) -> None:
    # A pin has no Body: it is still a customer writing, answered, never refused.
    response = post(client, payload("whatsapp_location.txt"))
    assert response.status_code == 200, response.get_data(as_text=True)
    [call] = twilio.wait_for("Messages.json")
    assert call.params["To"] == "whatsapp:+34600111222"
    assert "I can only read text for now" in call.params["Body"]
    transcript = app.extensions["parley"].log.transcript("twilio:whatsapp:+34600111222:whatsapp:+14155238886",
                                                         "twilio")
    assert transcript is not None and transcript[0].direction == "in"


def test_the_same_message_sid_twice_is_answered_once(client: FlaskClient, twilio: StubServer) -> None:
    assert post(client, payload("sms.txt")).status_code == 200
    assert post(client, payload("sms.txt")).status_code == 200
    assert len(twilio.settle("Messages.json", at_least=1)) == 1


def test_the_signature_is_checked_on_the_public_url(tmp_path: Path, twilio: StubServer) -> None:
    app = twilio_app(tmp_path, twilio, PARLEY_PUBLIC_URL="https://support.acme.example/")
    try:
        client = app.test_client()
        body = payload("sms.txt")
        public = "https://support.acme.example/twilio/messages"
        assert post(client, body).status_code == 401  # signed for the internal URL: refused
        assert post(client, body, url=public).status_code == 200
        assert len(twilio.wait_for("Messages.json")) == 1
    finally:
        app.extensions["parley"].close()


def test_forwarded_headers_from_an_untrusted_client_name_no_host(app: Flask, client: FlaskClient,
                                                                  twilio: StubServer) -> None:
    # No proxy is trusted and no public URL set: a request signed for another host (a webhook of
    # another Parley, replayed) must not pass by naming that host in X-Forwarded-Host.
    body = payload("whatsapp.txt")
    elsewhere = "https://bot.other.example/twilio/messages"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.other.example"}
    assert post(client, body, url=elsewhere, **forwarded).status_code == 401
    assert app.extensions["parley"].inbox.depth() == 0
    assert twilio.settle("Messages.json") == []


def test_the_signature_still_verifies_behind_a_trusted_proxy(tmp_path: Path, twilio: StubServer) -> None:
    # ProxyFix (server.trusted_proxies) rewrites the scheme; the signed URL must still be the public one.
    app = twilio_app(tmp_path, twilio, PARLEY_TRUSTED_PROXIES="1")
    try:
        body = payload("sms.txt")
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.acme.example",
                     "X-Forwarded-For": "198.51.100.4"}
        response = post(app.test_client(), body, url="https://bot.acme.example/twilio/messages", **forwarded)
        assert response.status_code == 200
        assert len(twilio.wait_for("Messages.json")) == 1
        # A host the client put before the proxy's own entry is not believed (one hop is trusted).
        spoofed = {**forwarded, "X-Forwarded-Host": "bot.other.example, bot.acme.example"}
        other = payload("whatsapp.txt")
        assert post(app.test_client(), other, url="https://bot.other.example/twilio/messages",
                    **spoofed).status_code == 401
    finally:
        app.extensions["parley"].close()


def test_bad_requests_are_refused_and_never_answered(app: Flask, client: FlaskClient,
                                                     twilio: StubServer) -> None:
    body = payload("sms.txt")
    tampered = body.replace("reset+my+password", "close+my+account")
    cases = [
        (client.post("/twilio/messages", data=body, content_type=FORM), 401),
        (client.post("/twilio/messages", data=tampered, content_type=FORM,
                     headers={"X-Twilio-Signature": signature(LOCAL_URL, body)}), 401),
        (client.post("/twilio/messages", data=body, content_type=FORM,
                     headers={"X-Twilio-Signature": signature(LOCAL_URL, body, token="0" * 32)}), 401),
        (post(client, "Body=hi&From=%2B12125550123"), 400),
        (client.post("/twilio/messages", data=body, content_type="application/json",
                     headers={"X-Twilio-Signature": signature(LOCAL_URL, body)}), 415),
        (post(client, body + "&Padding=" + "x" * 70_000), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.status_code, response.get_data())
    assert app.extensions["parley"].inbox.depth() == 0
    assert twilio.to("Messages.json") == []


def test_twilio_is_off_without_its_secrets(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), start_workers=False)
    response = app.test_client().post("/twilio/messages", data=payload("sms.txt"), content_type=FORM)
    assert response.status_code == 404


def test_long_replies_are_split_at_1600_characters(twilio: StubServer) -> None:
    adapter = TwilioAdapter(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, api_url=twilio.url,
                            public_url=None, max_text_chars=2000)
    sentences = " ".join(f"Step {i}: do the **thing** number {i}." for i in range(200))
    adapter.send([Reply(conversation_id="twilio:+1:+2", channel="twilio", text=sentences,
                        route={"to": "+12125550123", "from": "+14155550100"})])
    bodies = [call.params["Body"] for call in twilio.to("Messages.json")]
    assert len(bodies) == 5
    assert all(len(body) <= 1600 for body in bodies)
    assert " ".join(bodies) == sentences.replace("**", "")
