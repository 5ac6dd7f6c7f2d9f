"""Through the whole app: tokens stream to the widget over HTTP; every LLM reply is accounted in SQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import select
from sqlmodel import Session
from werkzeug.serving import make_server

from parley.stores.sql import Message
from parley.webhooks.app import create_app
from tests.integration.llm_support import llm_settings, openai_stub  # noqa: F401
from tests.stubs.openai_stub import OpenAIStub


@pytest.fixture
def llm_app(tmp_path: Path, openai_stub: OpenAIStub, database: dict[str, str]) -> Iterator[Flask]:
    app = create_app(llm_settings(tmp_path, openai_stub, environ=database))
    yield app
    app.extensions["parley"].close()


def test_tokens_stream_to_the_widget_over_http_then_the_reply_replaces_them(tmp_path: Path) -> None:
    stub = OpenAIStub(latency=0.5).start()
    app = create_app(llm_settings(tmp_path, stub))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}/widget/api"
    try:
        started = requests.post(f"{base}/messages", json={"text": "hi"}, timeout=10).json()
        conversation_id, secret = started["conversation_id"], {"X-Parley-Secret": started["secret"]}
        events: list[dict[str, object]] = []
        with requests.get(f"{base}/conversations/{conversation_id}/events", stream=True, headers=secret,
                          timeout=10) as stream:
            lines = stream.iter_lines(decode_unicode=True)
            assert next(lines) == "retry: 2000"  # connected: the stream starts after what exists
            answer = {}
            asking = threading.Thread(target=lambda: answer.update(requests.post(
                f"{base}/messages", json={"text": "How long does delivery take?",
                                          "conversation_id": conversation_id}, headers=secret, timeout=10).json()))
            asking.start()
            for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
                    if events[-1]["type"] == "message":
                        break
            asking.join()
        [reply] = answer["replies"]
        tokens = [event for event in events if event["type"] == "token"]
        assert len(tokens) > 3  # shown piece by piece, before the answer was complete
        assert {token["reply_id"] for token in tokens} == {reply["id"]}
        assert "".join(str(token["text"]) for token in tokens) == reply["text"]
        assert events[-1]["message"]["id"] == reply["id"]  # type: ignore[index]
        assert reply["engine"] == "llm"
        assert stub.requests[-1]["stream"] is True
    finally:
        server.shutdown()
        app.extensions["parley"].close()
        stub.stop()


def test_every_llm_reply_is_accounted_in_sql(llm_app: Flask, openai_stub: OpenAIStub) -> None:
    client = llm_app.test_client()
    first = client.post("/widget/api/messages", json={"text": "How do I reset my password?"}).get_json()
    again = client.post("/widget/api/messages", json={"text": "how do i reset my password"}).get_json()
    assert openai_stub.calls == 1
    engine = llm_app.extensions["parley"].log.database
    with Session(engine) as session:
        rows = {row.public_id: row for row in session.scalars(select(Message).where(Message.direction == "out"))}
    billed, cached = rows[first["replies"][0]["id"]], rows[again["replies"][0]["id"]]
    assert (billed.engine, billed.model, billed.cached) == ("llm", "gpt-4o-mini", False)
    usage = openai_stub.requests[0]
    assert billed.prompt_tokens == len(json.dumps(usage["messages"])) // 4  # what the stub billed
    assert billed.completion_tokens and billed.latency_ms is not None
    assert (cached.engine, cached.cached, cached.prompt_tokens, cached.completion_tokens) == (
        "llm", True, None, None)


def test_the_monthly_budget_survives_a_restart(tmp_path: Path, openai_stub: OpenAIStub) -> None:
    settings = llm_settings(tmp_path, openai_stub, monthly_token_budget=300)
    app = create_app(settings)
    app.test_client().post("/widget/api/messages", json={"text": "How do I reset my password?"})
    app.extensions["parley"].close()
    restarted = create_app(settings)  # the same SQLite log: ~500 tokens already billed this month
    try:
        reply = restarted.test_client().post("/widget/api/messages",
                                             json={"text": "Where is my order?"}).get_json()["replies"][0]
        assert reply["engine"] == "offline"
        assert openai_stub.calls == 1
    finally:
        restarted.extensions["parley"].close()
