"""The customer reads the bot in their language: the channel's hint (Telegram's language_code, the
widget's language or Accept-Language) or their words decide, and the conversation keeps it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.integration.test_telegram import BOT_TOKEN, PAYLOADS, SECRET, post, telegram  # noqa: F401
from tests.stubs.server import StubServer

SPANISH_GREETING = "¡Hola! Soy el asistente de Acme."


@pytest.fixture
def app(tmp_path: Path, telegram: StubServer) -> Iterator[Flask]:  # noqa: F811 - the fixture's user
    """The sample configuration (English, Spanish, French, German) with Telegram on, on SQLite."""
    app = create_app(make_settings(tmp_path, TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_SECRET_TOKEN=SECRET,
                                   TELEGRAM_API_URL=telegram.url))
    yield app
    app.extensions["parley"].close()


def update(update_id: int, text: str, language_code: str | None) -> bytes:
    """The recorded text update, with its text and the sender's language_code changed."""
    body = json.loads((PAYLOADS / "text.json").read_bytes())
    body["update_id"] = update_id
    body["message"]["message_id"] = update_id
    body["message"]["text"] = text
    if language_code is None:
        del body["message"]["from"]["language_code"]
    else:
        body["message"]["from"]["language_code"] = language_code
    return json.dumps(body).encode()


def test_telegram_answers_in_the_language_of_the_customers_app(client: FlaskClient, telegram: StubServer) -> None:  # noqa: F811
    assert post(client, update(900001, "hi", "es")).status_code == 200
    [greeting] = telegram.wait_for("sendMessage")
    assert greeting.params["text"].startswith(SPANISH_GREETING)
    assert post(client, update(900002, "gracias", "es")).status_code == 200
    thanks = telegram.wait_for("sendMessage", count=2)[-1]
    assert thanks.params["text"] == "¡De nada! ¿Puedo ayudarte con algo más?"


def test_telegram_without_language_code_reads_the_words(client: FlaskClient, telegram: StubServer) -> None:  # noqa: F811
    text = "Bonjour, je voudrais connaître la couleur préférée de votre directeur"
    assert post(client, update(900003, text, None)).status_code == 200
    [reply] = telegram.wait_for("sendMessage")
    assert reply.params["text"].startswith("Je ne suis pas sûr de pouvoir répondre")


def ask(client: FlaskClient, text: str, *, headers: dict | None = None, **body: object) -> dict:
    response = client.post("/widget/api/messages", json={"text": text, **body}, headers=headers or {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_widget_speaks_the_browsers_language(client: FlaskClient) -> None:
    first = ask(client, "hello", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"})
    assert first["replies"][0]["text"].startswith("Hallo! Ich bin der Acme-Assistent.")
    assert first["replies"][0]["quick_replies"][-1] == "Mit einem Menschen sprechen"
    again = ask(client, "danke sehr", headers={"X-Parley-Secret": first["secret"]},
                conversation_id=first["conversation_id"])
    assert again["replies"][0]["text"] == "Gern geschehen! Kann ich Ihnen sonst noch helfen?"


def test_the_widgets_stated_language_wins_over_the_browsers(client: FlaskClient) -> None:
    body = ask(client, "hi", headers={"Accept-Language": "en-US"}, language="fr")
    assert body["replies"][0]["text"].startswith("Bonjour ! Je suis l'assistant d'Acme.")


def test_the_widget_config_is_in_the_asked_language_with_its_interface(client: FlaskClient) -> None:
    config = client.get("/widget/api/config?language=es-MX").get_json()
    assert config["language"] == "es" and config["greeting"].startswith(SPANISH_GREETING)
    assert config["texts"]["ui_send"] == "Enviar" and config["quick_replies"][0] == "Seguir mi pedido"
    browser = client.get("/widget/api/config", headers={"Accept-Language": "fr-CA,fr;q=0.8"}).get_json()
    assert browser["language"] == "fr" and browser["texts"]["ui_input"] == "Écrivez votre message"
    unknown = client.get("/widget/api/config?language=ja", headers={"Accept-Language": "ja"}).get_json()
    assert unknown["language"] == "en" and unknown["texts"]["ui_send"] == "Send"
    bad = client.get("/widget/api/config?language=%3Cscript%3E").get_json()
    assert bad["language"] == "en"
