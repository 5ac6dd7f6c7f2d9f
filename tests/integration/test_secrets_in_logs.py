"""No secret reaches a log line at any level: a full run of every channel, its logs grepped for each
configured secret (as written, URL-encoded and JSON-escaped), whoever wrote the line."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from parley.webhooks.app import create_app
from tests.conftest import make_settings
from tests.integration.handoff_support import (
    BOT_TOKEN,
    HANDOFF_CHANNEL,
    PAYLOADS,
    SIGNING_SECRET,
    Desk,
    SlackApi,
    signed,
    wait_until,
)
from tests.stubs.openai_stub import OpenAIStub
from tests.stubs.server import serving, telegram_api, twilio_api

TWILIO_SID = "ACfake00000000000000000000000007a3"
TWILIO_TOKEN = "f3b2c1d0e9a8b7c6d5e4f3a2b1c0d9e8"
TELEGRAM_TOKEN = "987654321:AAHsecretTelegramTokenZZZZZZZZZZZZ"
TELEGRAM_SECRET = "tg-webhook-secret_9f8e7d6c5b"
ADMIN_TOKEN = "adm-4b6d8f0a2c4e6a8c"
OPENAI_KEY = "sk-live-7f3e9a1b5c7d9e1f"
DB_PASSWORD = "pg-pass-5e7a9c1b3d"
SECRETS = (BOT_TOKEN, SIGNING_SECRET, TWILIO_SID, TWILIO_TOKEN, TELEGRAM_TOKEN, TELEGRAM_SECRET, ADMIN_TOKEN,
           OPENAI_KEY, DB_PASSWORD)


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1]}


def twilio_post(client: FlaskClient, name: str) -> int:
    body = (PAYLOADS / "twilio" / name).read_text().strip().replace("ACfake0000000000000000000000000001",
                                                                    TWILIO_SID)
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(
        "http://localhost/twilio/messages", dict(parse_qsl(body, keep_blank_values=True)))
    return client.post("/twilio/messages", data=body, content_type="application/x-www-form-urlencoded",
                       headers={"X-Twilio-Signature": signature}).status_code


@pytest.fixture
def fresh_postgres(postgres_url: str) -> str:
    """The session's PostgreSQL database emptied, so each run starts with no threads or messages."""
    from sqlmodel import SQLModel

    from parley.stores.sql import open_database
    engine = open_database(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    return postgres_url


def slack_post(client: FlaskClient, body: bytes) -> int:
    return client.post("/slack/events", data=body, content_type="application/json",
                       headers=signed(body)).status_code


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_no_secret_reaches_any_log_line(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                        fresh_postgres: str, level: str) -> None:
    slack_api, llm = SlackApi(), OpenAIStub().start()
    database = fresh_postgres.replace("postgres@", f"postgres:{DB_PASSWORD}@")  # trust auth ignores it
    with serving(slack_api) as slack, serving(twilio_api()) as twilio, serving(telegram_api()) as telegram:
        settings = make_settings(
            tmp_path, PARLEY_LOG_JSON="true", PARLEY_LOG_LEVEL=level, DATABASE_URL=database,
            SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.url + "/api/",
            SLACK_HANDOFF_CHANNEL=HANDOFF_CHANNEL, TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
            TWILIO_API_URL=twilio.url, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET,
            TELEGRAM_API_URL=telegram.url, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN, OPENAI_API_KEY=OPENAI_KEY,
            OPENAI_BASE_URL=llm.base_url)
        settings = settings.model_copy(update={"handoff": settings.handoff.model_copy(
            update={"business_hours": None})})
        app = create_app(settings)
        try:
            client = app.test_client()
            assert client.post("/widget/api/messages", json={"text": "How do I reset my password?"}
                               ).status_code == 200
            assert slack_post(client, (PAYLOADS / "slack" / "message_im.json").read_bytes()) == 200
            assert slack_post(client, (PAYLOADS / "slack" / "app_mention.json").read_bytes()) == 200
            person = json.loads((PAYLOADS / "slack" / "message_im.json").read_bytes())
            person["event_id"], person["event"]["channel"] = "Ev0PERSON01", "D0CUSTOMER2"
            person["event"]["text"] = "I want to talk to a person"
            assert slack_post(client, json.dumps(person).encode()) == 200
            desk = Desk(client, slack_api)
            thread = desk.wait_for_thread()
            assert desk.reply(thread, "Hi, Bo here. Let me look.") == 200
            assert twilio_post(client, "sms.txt") == 200 and twilio_post(client, "whatsapp.txt") == 200
            assert client.post("/telegram/webhook", data=(PAYLOADS / "telegram" / "text.json").read_bytes(),
                               content_type="application/json",
                               headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}).status_code == 200
            bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            assert client.get("/metrics", headers=bearer).status_code == 200
            assert client.get("/admin/export?" + urlencode({"format": "jsonl"}), headers=bearer).status_code == 200
            # What a platform would see go out, to be sure every channel really ran.
            assert wait_until(lambda: len(twilio.to("Messages.json")) >= 2)
            assert wait_until(lambda: telegram.to("sendMessage"))
            assert wait_until(lambda: any("Bo here" in p.get("text", "") for _, p in slack_api.posted))
            assert wait_until(lambda: len([p for _, p in slack_api.posted if p["channel"] != HANDOFF_CHANNEL]) >= 3)
            # A library that logs a URL with a token in it, loud enough to be heard: masked all the same.
            logging.getLogger("httpx").warning("HTTP Request: POST %s/bot%s/getMe", telegram.url, TELEGRAM_TOKEN)
        finally:
            app.extensions["parley"].close()
            llm.stop()
    output = capfd.readouterr().err
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert sum(line["event"] == "message_answered" for line in lines) >= 6
    assert any(line.get("logger") == "httpx" and "/bot[redacted]/getMe" in line["event"] for line in lines)
    leaked = {secret for secret in SECRETS for form in forms(secret) if form in output}
    assert not leaked, [line for line in output.splitlines() if any(s in line for s in leaked)][:5]


def test_parley_serve_writes_no_secret_either(tmp_path: Path) -> None:
    # The real process: gunicorn's own lines and each worker's, as a pod writes them.
    import os
    import subprocess

    import requests

    from tests.integration.test_server import PARLEY, free_port, wait_until_ready

    with serving(twilio_api()) as twilio, serving(telegram_api()) as telegram:
        port = free_port()
        env = {**os.environ, "PORT": str(port), "PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_LOG_JSON": "true",
               "PARLEY_LOG_LEVEL": "DEBUG", "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
               "TWILIO_API_URL": twilio.url, "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
               "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET, "TELEGRAM_API_URL": telegram.url,
               "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN}
        for name in ("REDIS_URL", "DATABASE_URL", "OPENAI_API_KEY", "SLACK_BOT_TOKEN"):
            env.pop(name, None)
        process = subprocess.Popen([str(PARLEY), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, process)
            update = (PAYLOADS / "telegram" / "text.json").read_bytes()
            assert requests.post(f"{url}/telegram/webhook", data=update, timeout=10, headers={
                "Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}).status_code == 200
            body = (PAYLOADS / "twilio" / "sms.txt").read_text().strip()
            signature = RequestValidator(TWILIO_TOKEN).compute_signature(
                f"{url}/twilio/messages", dict(parse_qsl(body, keep_blank_values=True)))
            assert requests.post(f"{url}/twilio/messages", data=body, timeout=10, headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}).status_code == 200
            assert requests.get(f"{url}/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                timeout=10).status_code == 200
            assert wait_until(lambda: telegram.to("sendMessage") and twilio.to("Messages.json"))
        finally:
            process.terminate()
            output = process.communicate(timeout=30)[0].decode()
    assert "message_answered" in output
    leaked = {secret for secret in SECRETS for form in forms(secret) if form in output}
    assert not leaked, [line for line in output.splitlines() if any(s in line for s in leaked)][:5]
