"""Embedding the widget on other sites: CORS, frame-ancestors, the rate limit, feedback, live events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from parley.channels.web import origin_pattern
from parley.core.envelope import Reply
from parley.settings import WidgetSettings
from parley.stores.sql import Feedback
from parley.webhooks.app import create_app
from tests.conftest import make_settings

SHOP = "https://www.shop.example"
ADMIN = {"Authorization": "Bearer admin-secret"}
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-parley-secret"}


@pytest.fixture
def app(tmp_path: Path, database: dict[str, str]) -> Iterator[Flask]:
    settings = make_settings(tmp_path, PARLEY_WIDGET_ORIGINS="https://*.shop.example, http://localhost:*",
                             PARLEY_ADMIN_TOKEN="admin-secret", **database)
    app = create_app(settings)
    yield app
    app.extensions["parley"].close()


def start(client: FlaskClient, text: str = "How do I reset my password?") -> dict:
    response = client.post("/widget/api/messages", json={"text": text}, headers={"Origin": SHOP})
    assert response.status_code == 200
    return response.get_json()


def secret(body: dict) -> dict[str, str]:
    return {"X-Parley-Secret": body["secret"]}


def test_an_allowed_site_passes_the_preflight_and_reads_the_answer(client: FlaskClient) -> None:
    preflight = client.options("/widget/api/messages", headers={"Origin": SHOP, **PREFLIGHT})
    assert preflight.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    # The conversation's secret travels in a header: a cross-site browser may send it.
    assert "x-parley-secret" in preflight.headers["Access-Control-Allow-Headers"].lower()
    answer = client.post("/widget/api/messages", json={"text": "hi"}, headers={"Origin": "http://localhost:5173"})
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert answer.headers["Access-Control-Expose-Headers"] == "Retry-After"


@pytest.mark.parametrize("origin", ["https://evil.example", "https://shop.example.evil.example",
                                    "http://www.shop.example", "http://localhost.evil.example:80"])
def test_other_sites_get_no_cors_and_a_403(client: FlaskClient, origin: str) -> None:
    preflight = client.options("/widget/api/messages", headers={"Origin": origin, **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = client.post("/widget/api/messages", json={"text": "hi"}, headers={"Origin": origin})
    assert (response.status_code, response.get_json()) == (403, {"error": "origin not allowed"})


def test_only_allowed_sites_may_frame_the_demo_page(client: FlaskClient) -> None:
    csp = client.get("/widget").headers["Content-Security-Policy"]
    assert csp == "frame-ancestors 'self' https://*.shop.example http://localhost:*"


def test_origins_come_comma_separated_from_the_environment(tmp_path: Path) -> None:
    assert make_settings(tmp_path).channels.widget.allowed_origins == ()
    settings = make_settings(tmp_path, PARLEY_WIDGET_ORIGINS=" https://a.example/ ,http://localhost:*")
    assert settings.channels.widget.allowed_origins == ("https://a.example", "http://localhost:*")
    with pytest.raises(ValueError, match="'a.example' is not an origin"):
        WidgetSettings(allowed_origins="a.example")


@pytest.mark.parametrize(("pattern", "origin", "allowed"), [
    ("https://*.shop.example", "https://eu.www.shop.example", True),
    ("https://*.shop.example", "https://shop.example", False),
    ("https://*.shop.example", "https://evil.example/.shop.example", False),
    ("http://localhost:*", "http://localhost:8080", True),
    ("http://localhost:*", "http://localhost:80@evil.example", False),
    ("https://shop.example", "HTTPS://SHOP.EXAMPLE", True),
])
def test_origin_patterns(pattern: str, origin: str, allowed: bool) -> None:
    assert bool(origin_pattern(pattern).match(origin)) is allowed


def test_a_browser_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored(
        client: FlaskClient, app: Flask) -> None:
    first = start(client)
    conversation_id, headers = first["conversation_id"], {"Origin": SHOP, **secret(first)}
    limit = app.extensions["parley"].settings.channels.widget.messages_per_minute
    statuses = [client.post("/widget/api/messages", json={"text": f"again {n}", "conversation_id": conversation_id},
                            headers=headers).status_code for n in range(limit)]
    assert statuses == [200] * limit
    refused = client.post("/widget/api/messages", json={"text": "one too many", "conversation_id": conversation_id},
                          headers=headers)
    assert refused.status_code == 429
    assert refused.get_json() == {"error": "You're sending messages too fast, please wait a moment"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    in_spanish = client.post("/widget/api/messages", headers=headers,
                             json={"text": "otra vez", "conversation_id": conversation_id, "language": "es-ES"})
    assert in_spanish.status_code == 429
    assert in_spanish.get_json() == {"error": "Estás enviando mensajes demasiado rápido; espera un momento"}
    assert refused.headers["Access-Control-Allow-Origin"] == SHOP  # so the widget can read Retry-After
    history = client.get(f"/widget/api/conversations/{conversation_id}", headers=headers).get_json()["messages"]
    assert "one too many" not in [m["text"] for m in history]
    # Another browser is not held back by this one.
    assert start(client)["conversation_id"] != conversation_id


def test_a_vote_on_an_answer_is_stored_and_can_be_changed(client: FlaskClient, app: Flask) -> None:
    body = start(client)
    vote = {"conversation_id": body["conversation_id"], "message_id": body["replies"][0]["id"]}
    assert client.post("/widget/api/feedback", json={**vote, "score": 1}, headers=secret(body)).status_code == 201
    assert client.post("/widget/api/feedback", json={**vote, "score": -1}, headers=secret(body)).status_code == 201
    with Session(app.extensions["parley"].log.database) as session:
        rows = session.scalars(select(Feedback).where(Feedback.conversation_id == body["conversation_id"])).all()
    assert [(row.message_id, row.score) for row in rows] == [(vote["message_id"], -1)]


def test_bad_votes_get_a_clear_4xx(client: FlaskClient) -> None:
    body = start(client)
    conversation_id = body["conversation_id"]
    user_message = client.get(f"/widget/api/conversations/{conversation_id}",
                              headers=secret(body)).get_json()["messages"][0]["id"]
    other = start(client)
    cases = [
        ({"conversation_id": conversation_id, "message_id": body["replies"][0]["id"], "score": 5}, 400,
         "score must be 1 or -1"),
        ({"conversation_id": conversation_id, "message_id": body["replies"][0]["id"], "score": True}, 400,
         "score must be 1 or -1"),
        ({"conversation_id": "../x", "message_id": "m", "score": 1}, 400, "conversation_id is missing or malformed"),
        ({"conversation_id": conversation_id, "score": 1}, 400, "message_id is missing or malformed"),
        ({"conversation_id": conversation_id, "message_id": user_message, "score": 1}, 404, "unknown message"),
        ({"conversation_id": other["conversation_id"], "message_id": body["replies"][0]["id"], "score": 1},
         404, "unknown message"),
    ]
    for vote, status, error in cases:
        holder = other if vote.get("conversation_id") == other["conversation_id"] else body
        response = client.post("/widget/api/feedback", json=vote, headers=secret(holder))
        assert (response.status_code, response.get_json()) == (status, {"error": error}), vote


def read_events(response, count: int) -> list[tuple[str, dict]]:
    """The next ``count`` events of a stream as (id, data), skipping the retry line and heartbeats."""
    events: list[tuple[str, dict]] = []
    for chunk in response.response:
        for block in chunk.decode().split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
            if "data" in fields:
                events.append((fields["id"], json.loads(fields["data"])))
        if len(events) >= count:
            return events
    raise AssertionError(f"stream ended after {events}")


def test_events_stream_rep_messages_tokens_and_typing(client: FlaskClient, app: Flask) -> None:
    body = start(client)
    conversation_id = body["conversation_id"]
    mailbox = app.extensions["parley"].adapters["widget"].mailbox
    mailbox.publish_token(conversation_id, "old-reply", "stale ")  # before the browser connected
    stream = client.get(f"/widget/api/conversations/{conversation_id}/events",
                        headers={"Origin": SHOP, **secret(body)})
    assert stream.mimetype == "text/event-stream"
    assert stream.headers["Access-Control-Allow-Origin"] == SHOP
    mailbox.publish_typing(conversation_id)
    mailbox.publish_token(conversation_id, "r1", "Hel")
    posted = client.post(f"/admin/conversations/{conversation_id}/messages", headers=ADMIN,
                         json={"text": "Dana here, I'll look into it.", "author": "Dana"})
    assert posted.status_code == 201
    events = read_events(stream, 3)
    stream.close()
    assert [data for _, data in events[:2]] == [{"type": "typing"}, {"type": "token", "reply_id": "r1", "text": "Hel"}]
    message = events[2][1]["message"]
    assert (message["author"], message["text"], message["direction"]) == ("Dana", "Dana here, I'll look into it.", "out")
    # Logged too: the rep's message is in the history after a reload.
    history = client.get(f"/widget/api/conversations/{conversation_id}", headers=secret(body)).get_json()["messages"]
    assert history[-1] == {**message, "created_at": history[-1]["created_at"]}


def test_a_reconnecting_browser_resumes_after_its_last_event(client: FlaskClient, app: Flask) -> None:
    body = start(client)
    conversation_id = body["conversation_id"]
    mailbox = app.extensions["parley"].adapters["widget"].mailbox
    reply = Reply(conversation_id=conversation_id, channel="widget", text="first", author="Dana")
    mailbox.publish(conversation_id, [reply])
    mailbox.publish_token(conversation_id, "r2", "second")
    seen = mailbox.after(conversation_id, "0", timeout=0)[-2].cursor
    for headers, query in (({"Last-Event-ID": seen, **secret(body)}, ""), (secret(body), f"?cursor={seen}")):
        stream = client.get(f"/widget/api/conversations/{conversation_id}/events{query}", headers=headers)
        assert [data for _, data in read_events(stream, 1)] == [{"type": "token", "reply_id": "r2", "text": "second"}]
        stream.close()
    # A cursor that is not one starts at the end, like a fresh stream.
    stream = client.get(f"/widget/api/conversations/{conversation_id}/events",
                        headers={"Last-Event-ID": "x'; --", **secret(body)})
    mailbox.publish_typing(conversation_id)
    assert [data for _, data in read_events(stream, 1)] == [{"type": "typing"}]
    stream.close()


def test_a_browser_hears_its_first_answer_on_the_conversation_it_is_starting(client: FlaskClient) -> None:
    started = client.post("/widget/api/conversations", headers={"Origin": SHOP})  # id and secret first
    assert started.status_code == 201
    conversation_id = started.get_json()["conversation_id"]
    # As the browser's EventSource does: no headers, the stream pass in the query.
    stream = client.get(f"/widget/api/conversations/{conversation_id}/events?token={started.get_json()['stream_token']}")
    assert stream.status_code == 200
    sent = client.post("/widget/api/messages", headers=secret(started.get_json()), json={
        "text": "How do I reset my password?", "conversation_id": conversation_id,
        "client_message_id": str(uuid.uuid4())}).get_json()
    assert sent["conversation_id"] == conversation_id
    [(_, event)] = read_events(stream, 1)
    stream.close()
    assert event["message"]["id"] == sent["replies"][0]["id"]
    assert event["message"]["sources"] == [{"id": "reset-password", "title": "How do I reset my password?",
                                            "url": "https://help.acme.example/account/reset-password"}]


def test_events_of_a_malformed_conversation_id_are_404(client: FlaskClient) -> None:
    response = client.get("/widget/api/conversations/not..an..id/events")
    assert (response.status_code, response.get_json()) == (404, {"error": "unknown conversation"})


def test_the_rep_api_needs_the_admin_token(client: FlaskClient, tmp_path: Path) -> None:
    conversation_id = start(client)["conversation_id"]
    url = f"/admin/conversations/{conversation_id}/messages"
    message = {"text": "hello", "author": "Dana"}
    assert client.post(url, json=message).status_code == 401
    assert client.post(url, json=message, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/admin/conversations/w0000000000000000/messages", json=message,
                       headers=ADMIN).get_json() == {"error": "unknown conversation"}
    assert client.post(url, json={"text": "hello"}, headers=ADMIN).get_json() == {
        "error": "author must be the rep's name (1-80 characters)"}
    off = create_app(make_settings(tmp_path / "off"))
    try:
        assert off.test_client().post(url, json=message, headers=ADMIN).status_code == 404
    finally:
        off.extensions["parley"].close()
