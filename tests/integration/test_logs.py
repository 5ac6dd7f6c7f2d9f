"""Production logs: one JSON object a line, request and conversation bound, bodies only at DEBUG,
secrets never, whoever logged the line (our code, gunicorn, the standard library)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import structlog

from parley.webhooks.app import create_app
from tests.conftest import make_settings

ADMIN_TOKEN = "adm-7c1e0f9b2d4a"
PRESENTED = "stolen-token-31d9e2"
SECRET_TEXT = "my card is 4111 1111 1111 1111, how do I reset my password?"


def run(tmp_path: Path, capfd: pytest.CaptureFixture[str], level: str) -> list[dict[str, Any]]:
    """One widget conversation and one refused admin call through a production-configured app."""
    settings = make_settings(tmp_path, PARLEY_LOG_JSON="true", PARLEY_LOG_LEVEL=level,
                             PARLEY_ADMIN_TOKEN=ADMIN_TOKEN)
    app = create_app(settings)
    try:
        client = app.test_client()
        capfd.readouterr()
        answer = client.post("/widget/api/messages", json={"text": SECRET_TEXT},
                             headers={"X-Request-Id": "req-widget-1"})
        assert answer.status_code == 200
        refused = client.get("/metrics", headers={"Authorization": f"Bearer {PRESENTED}"})
        assert refused.status_code == 401
        logging.getLogger("thirdparty").warning("a library speaks, token=%s", "x")
        structlog.get_logger("parley.test").info("careless", bot_token=ADMIN_TOKEN, authorization=PRESENTED)
    finally:
        app.extensions["parley"].close()
    output = capfd.readouterr().err
    assert ADMIN_TOKEN not in output and PRESENTED not in output
    return [json.loads(line) for line in output.splitlines() if line.strip()]  # every line is JSON


def test_each_line_is_json_with_request_channel_and_conversation(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    lines = run(tmp_path, capfd, "INFO")
    [stored] = [line for line in lines if line["event"] == "envelope_stored"]
    assert stored["request_id"] == "req-widget-1"
    assert stored["channel"] == "widget" and stored["conversation_id"].startswith("w")
    assert stored["level"] == "info" and stored["timestamp"].endswith("Z")
    [answered] = [line for line in lines if line["event"] == "message_answered"]
    assert answered["conversation_id"] == stored["conversation_id"] and answered["channel"] == "widget"
    [refused] = [line for line in lines if line["event"] == "request_refused"]
    assert refused["status"] == 401 and refused["path"] == "/metrics"
    [library] = [line for line in lines if line.get("logger") == "thirdparty"]
    assert library["level"] == "warning"
    [careless] = [line for line in lines if line["event"] == "careless"]
    assert careless["bot_token"] == "[redacted]" and careless["authorization"] == "[redacted]"


def test_message_bodies_appear_only_at_debug(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    info = run(tmp_path / "info", capfd, "INFO")
    assert not any("4111" in json.dumps(line) for line in info)
    debug = run(tmp_path / "debug", capfd, "DEBUG")
    bodies = [line for line in debug if "4111" in json.dumps(line)]
    assert bodies and all(line["level"] == "debug" for line in bodies)
    assert any(line["event"] == "envelope_text" and line["text"] == SECRET_TEXT for line in bodies)


def test_token_counts_are_logged_and_keys_are_not(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from tests.integration.llm_support import API_KEY, llm_settings
    from tests.stubs.openai_stub import OpenAIStub

    stub = OpenAIStub().start()
    app = create_app(llm_settings(tmp_path, stub, environ={"PARLEY_LOG_JSON": "true"}))
    try:
        capfd.readouterr()
        assert app.test_client().post("/widget/api/messages", json={"text": "How long does delivery take?"}
                                      ).status_code == 200
        structlog.get_logger("parley.test").info("careless", api_key=API_KEY, session_token="tok-1234567")
    finally:
        app.extensions["parley"].close()
        stub.stop()
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.strip()]
    [answered] = [line for line in lines if line["event"] == "llm_answered"]
    # A data scientist reads what each answer cost; a count is no secret.
    assert isinstance(answered["prompt_tokens"], int) and answered["prompt_tokens"] > 0
    assert isinstance(answered["completion_tokens"], int) and answered["completion_tokens"] > 0
    [careless] = [line for line in lines if line["event"] == "careless"]
    assert careless["api_key"] == "[redacted]" and careless["session_token"] == "[redacted]"
