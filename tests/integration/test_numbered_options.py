"""On SMS and WhatsApp, quick replies are a numbered list, and the next message "2" picks the second.

Signed Twilio webhooks in, the Messages API stub out, as in test_twilio.py.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from flask import Flask
from flask.testing import FlaskClient

from tests.integration.test_twilio import app, payload, post, twilio  # noqa: F401 - fixtures
from tests.stubs.server import StubServer

CONVERSATION = "twilio:+12125550123:+14155550100"


def sms(client: FlaskClient, text: str, sid: str) -> int:
    body = payload("sms.txt").replace("Body=How+do+I+reset+my+password%3F", f"Body={quote(text)}")
    body = body.replace("SM1f0e8a2b3c4d5e6f7a8b9c0d1e2f3a4b", sid)
    return post(client, body).status_code


def test_options_are_numbered_and_a_number_picks_one(app: Flask, client: FlaskClient,  # noqa: F811
                                                     twilio: StubServer) -> None:  # noqa: F811
    assert sms(client, "hello", "SM00000000000000000000000000000001") == 200
    [greeting] = twilio.wait_for("Messages.json")
    assert greeting.params["Body"].endswith("Reply with a number:\n\n1. Track my order\n2. Start a return\n"
                                            "3. Reset my password\n4. Talk to a person")

    assert sms(client, "3", "SM00000000000000000000000000000002") == 200
    _, answer = twilio.wait_for("Messages.json", count=2)
    assert "Forgot password?" in answer.params["Body"]
    # The log keeps what the customer typed; the answer is to the option it picked.
    transcript = app.extensions["parley"].log.transcript(CONVERSATION, "twilio")
    assert transcript is not None and [m.text for m in transcript if m.direction == "in"] == ["hello", "3"]


def test_a_number_picks_only_from_the_last_answers_options(client: FlaskClient,  # noqa: F811
                                                            twilio: StubServer) -> None:  # noqa: F811
    sent = ["hello", "2", "How do I reset my password?", "2"]
    for number, text in enumerate(sent, start=1):
        assert sms(client, text, f"SM0000000000000000000000000000001{number}") == 200
        twilio.wait_for("Messages.json", count=number)
    _, picked, answer, after_answer = (call.params["Body"] for call in twilio.to("Messages.json"))
    assert "Reply with a number" not in answer  # a grounded answer offers no options
    assert after_answer != picked  # so "2" is no longer "Start a return"


@pytest.mark.parametrize(("hello", "prompt", "first"), [
    ("hola", "Responde con un número:", "Seguir mi pedido"),
    ("bonjour", "Répondez par un numéro :", "Suivre ma commande"),
])
def test_the_options_are_introduced_in_the_customers_language(client: FlaskClient, twilio: StubServer,  # noqa: F811
                                                               hello: str, prompt: str, first: str) -> None:
    assert sms(client, hello, "SM00000000000000000000000000000031") == 200
    [greeting] = twilio.wait_for("Messages.json")
    assert f"\n\n{prompt}\n\n1. {first}\n2. " in greeting.params["Body"]
    assert "Reply with a number" not in greeting.params["Body"]
