"""A widget conversation's id is not a credential: its secret is, on history, events, posts and feedback.

Through the real app (SQLite and PostgreSQL): with only the id every call is refused; with the
secret it works; a stream token opens only its own conversation's events and expires; a chat
saved before secrets existed re-attaches once while open; and the secret never reaches a log line.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from parley.channels.web_secrets import REFUSED, STREAM_TOKEN_SECONDS, ConversationKeys
from parley.core.envelope import Envelope
from parley.errors import InvalidSignature
from parley.webhooks.app import create_app
from tests.conftest import make_settings

HEADER = "X-Parley-Secret"
QUESTION = "How do I reset my password?"


def started(client: FlaskClient) -> dict:
    response = client.post("/widget/api/conversations", json={})
    assert response.status_code == 201
    return response.get_json()


def talk(client: FlaskClient) -> tuple[dict, dict]:
    """A conversation started the way the widget starts one, with one answered question."""
    conversation = started(client)
    answer = client.post("/widget/api/messages", headers={HEADER: conversation["secret"]},
                         json={"text": QUESTION, "conversation_id": conversation["conversation_id"]})
    assert answer.status_code == 200
    return conversation, answer.get_json()


def calls(client: FlaskClient, conversation_id: str, reply_id: str, headers: dict[str, str],
          query: str = "") -> dict[str, int]:
    """The status of each thing a browser does with a conversation, sent with ``headers``."""
    base = f"/widget/api/conversations/{conversation_id}"
    events = client.get(f"{base}/events{query}", headers=headers)
    events.close()
    return {
        "history": client.get(base, headers=headers).status_code,
        "events": events.status_code,
        "post": client.post("/widget/api/messages", headers=headers,
                            json={"text": "thanks", "conversation_id": conversation_id}).status_code,
        "feedback": client.post("/widget/api/feedback", headers=headers, json={
            "conversation_id": conversation_id, "message_id": reply_id, "score": 1}).status_code,
        "stream-token": client.post(f"{base}/stream-token", headers=headers).status_code,
    }


def test_with_only_the_id_nothing_opens(client: FlaskClient) -> None:
    conversation, answer = talk(client)
    conversation_id, reply_id = conversation["conversation_id"], answer["replies"][0]["id"]
    other = started(client)
    refused = dict.fromkeys(["history", "events", "post", "feedback", "stream-token"], 401)
    assert calls(client, conversation_id, reply_id, {}) == refused
    assert calls(client, conversation_id, reply_id, {HEADER: other["secret"]}) == refused
    assert calls(client, conversation_id, reply_id, {HEADER: conversation["secret"][:-1]}) == refused
    # Another conversation's stream pass, or the pass offered as the secret, opens nothing either.
    assert calls(client, conversation_id, reply_id, {}, f"?token={other['stream_token']}")["events"] == 401
    assert calls(client, conversation_id, reply_id, {HEADER: conversation["stream_token"]}) == refused
    body = client.get(f"/widget/api/conversations/{conversation_id}").get_json()
    assert body == {"error": REFUSED}
    # Nothing was stored by the refused posts and votes.
    history = client.get(f"/widget/api/conversations/{conversation_id}",
                         headers={HEADER: conversation["secret"]}).get_json()["messages"]
    assert [m["text"] for m in history if m["direction"] == "in"] == [QUESTION]


def test_with_the_secret_everything_works(client: FlaskClient) -> None:
    conversation, answer = talk(client)
    conversation_id, reply_id = conversation["conversation_id"], answer["replies"][0]["id"]
    assert calls(client, conversation_id, reply_id, {HEADER: conversation["secret"]}) == {
        "history": 200, "events": 200, "post": 200, "feedback": 201, "stream-token": 200}
    token = conversation["stream_token"]
    assert calls(client, conversation_id, reply_id, {}, f"?token={token}")["events"] == 200
    history = client.get(f"/widget/api/conversations/{conversation_id}",
                         headers={HEADER: conversation["secret"]}).get_json()["messages"]
    assert [m["text"] for m in history if m["direction"] == "in"] == [QUESTION, "thanks"]


def test_the_stream_pass_expires_and_is_renewed_with_the_secret(client: FlaskClient) -> None:
    conversation = started(client)
    conversation_id, secret = conversation["conversation_id"], conversation["secret"]
    assert conversation["expires_in"] == STREAM_TOKEN_SECONDS
    renewed = client.post(f"/widget/api/conversations/{conversation_id}/stream-token", headers={HEADER: secret})
    assert renewed.get_json()["expires_in"] == STREAM_TOKEN_SECONDS
    keys = ConversationKeys(b"k")
    stale = keys.stream_token(conversation_id, now=time.time() - STREAM_TOKEN_SECONDS - 1)
    with pytest.raises(InvalidSignature, match="stale stream token"):
        keys.verify_stream_token(conversation_id, stale)
    keys.verify_stream_token(conversation_id, keys.stream_token(conversation_id))
    forged_expiry = f"{int(time.time()) + 10_000}.{conversation['stream_token'].partition('.')[2]}"
    stream = client.get(f"/widget/api/conversations/{conversation_id}/events?token={forged_expiry}")
    assert stream.status_code == 401


def test_a_first_message_without_a_conversation_gets_its_secret_and_a_retry_the_same(client: FlaskClient) -> None:
    message_id = str(uuid.uuid4())
    first = client.post("/widget/api/messages", json={"text": QUESTION, "client_message_id": message_id})
    again = client.post("/widget/api/messages", json={"text": QUESTION, "client_message_id": message_id})
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    conversation_id, secret = first.get_json()["conversation_id"], first.get_json()["secret"]
    history = client.get(f"/widget/api/conversations/{conversation_id}", headers={HEADER: secret}).get_json()
    assert len(history["messages"]) == 2
    # Neither id the logs show gives away the message id that would let anyone else "retry" it.
    assert message_id not in conversation_id and message_id not in json.dumps(history)
    # Continuing needs the secret like any conversation.
    assert client.post("/widget/api/messages", json={"text": "more", "conversation_id": conversation_id}
                       ).status_code == 401


def test_a_leaked_id_cannot_spend_the_customers_rate_limit(client: FlaskClient) -> None:
    conversation, _ = talk(client)
    body = {"text": "spam", "conversation_id": conversation["conversation_id"]}
    assert {client.post("/widget/api/messages", json=body).status_code for _ in range(25)} == {401}
    mine = client.post("/widget/api/messages", json={**body, "text": "still me"},
                       headers={HEADER: conversation["secret"]})
    assert mine.status_code == 200


@pytest.fixture
def app_and_log(app: Flask) -> Iterator[tuple[Flask, object]]:
    yield app, app.extensions["parley"].log


def legacy(log: object, *, age: float = 60.0) -> str:
    """A conversation as browsers opened them before secrets: "w" and the first message's UUID."""
    client_message_id = str(uuid.uuid4())
    conversation_id = f"w{client_message_id}"
    log.record_inbound(Envelope(channel="widget", conversation_id=conversation_id,  # type: ignore[attr-defined]
                                message_id=f"{conversation_id}:{client_message_id}", sender=conversation_id,
                                text="where is my parcel?", timestamp=time.time() - age))
    return conversation_id


def test_an_open_chat_from_before_secrets_re_attaches_once(app_and_log: tuple[Flask, object]) -> None:
    app, log = app_and_log
    client = app.test_client()
    conversation_id = legacy(log)
    assert client.get(f"/widget/api/conversations/{conversation_id}").status_code == 401
    claimed = client.post("/widget/api/conversations", json={"conversation_id": conversation_id})
    assert claimed.status_code == 201 and claimed.get_json()["conversation_id"] == conversation_id
    history = client.get(f"/widget/api/conversations/{conversation_id}",
                         headers={HEADER: claimed.get_json()["secret"]}).get_json()["messages"]
    assert [m["text"] for m in history] == ["where is my parcel?"]
    # Its browser has the secret now: the id alone is worth nothing, even to claim it again.
    again = client.post("/widget/api/conversations", json={"conversation_id": conversation_id})
    assert (again.status_code, again.get_json()) == (401, {"error": REFUSED})


def test_no_claim_for_a_chat_left_for_a_day_an_unknown_or_a_new_conversation(
        app_and_log: tuple[Flask, object]) -> None:
    app, log = app_and_log
    client = app.test_client()
    new = started(client)
    talk_id = new["conversation_id"]
    client.post("/widget/api/messages", headers={HEADER: new["secret"]},
                json={"text": QUESTION, "conversation_id": talk_id})
    for conversation_id in (legacy(log, age=25 * 3600), f"w{uuid.uuid4()}", talk_id):
        refused = client.post("/widget/api/conversations", json={"conversation_id": conversation_id})
        assert refused.status_code == 401, conversation_id
    assert client.post("/widget/api/conversations", json={"conversation_id": "../etc"}).status_code == 400


def test_the_secret_never_reaches_a_log_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A whole widget conversation (start, stream, answers, history, feedback, refusals) at DEBUG."""
    app = create_app(make_settings(tmp_path, PARLEY_LOG_JSON="true", PARLEY_LOG_LEVEL="DEBUG"))
    presented: list[str] = []
    try:
        client = app.test_client()
        capfd.readouterr()
        conversation, answer = talk(client)
        conversation_id, secret, token = (conversation["conversation_id"], conversation["secret"],
                                          conversation["stream_token"])
        presented += [secret, token]
        statuses = calls(client, conversation_id, answer["replies"][0]["id"], {HEADER: secret}, f"?token={token}")
        assert statuses == {"history": 200, "events": 200, "post": 200, "feedback": 201, "stream-token": 200}
        presented.append(client.post(f"/widget/api/conversations/{conversation_id}/stream-token",
                                     headers={HEADER: secret}).get_json()["stream_token"])
        first = client.post("/widget/api/messages", json={"text": QUESTION}).get_json()
        presented.append(first["secret"])
        wrong = secret[::-1]
        presented.append(wrong)
        assert calls(client, conversation_id, answer["replies"][0]["id"], {HEADER: wrong},
                     f"?token={token[::-1]}")["history"] == 401
    finally:
        app.extensions["parley"].close()
    output = capfd.readouterr()
    lines = [json.loads(line) for line in output.err.splitlines() if line.strip()]
    assert any(line.get("conversation_id") == conversation_id for line in lines)  # the run was logged
    assert any(line["event"] == "request_refused" and line.get("status") == 401 for line in lines)
    for value in presented:
        assert value not in output.err and value not in output.out


def test_a_restart_keeps_every_open_chat_and_pods_with_one_key_agree(tmp_path: Path) -> None:
    def secret_works(settings_dir: Path, conversation: dict, **environ: str) -> int:
        app = create_app(make_settings(settings_dir, **environ))
        try:
            return app.test_client().get(f"/widget/api/conversations/{conversation['conversation_id']}",
                                         headers={HEADER: conversation["secret"]}).status_code
        finally:
            app.extensions["parley"].close()

    first = create_app(make_settings(tmp_path / "a"))
    try:
        conversation = started(first.test_client())
    finally:
        first.extensions["parley"].close()
    # Embedded: the key drawn at the first start is kept in the data dir, readable by Parley alone.
    key_file = tmp_path / "a" / "var" / "widget.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert secret_works(tmp_path / "a", conversation) == 200  # the same data dir after a restart
    assert secret_works(tmp_path / "b", conversation) == 401  # another installation: another key
    # PARLEY_WIDGET_KEY: every process that has it verifies what any other issued.
    shared = {"PARLEY_WIDGET_KEY": "widget-key-for-every-pod-5d2c"}
    app = create_app(make_settings(tmp_path / "c", **shared))
    try:
        issued = started(app.test_client())
    finally:
        app.extensions["parley"].close()
    assert secret_works(tmp_path / "d", issued, **shared) == 200


def test_an_address_starting_conversations_by_the_hundred_is_asked_to_wait(client: FlaskClient) -> None:
    limit = client.application.extensions["parley"].settings.channels.widget.messages_per_minute_per_ip
    assert {client.post("/widget/api/conversations").status_code for _ in range(limit)} == {201}
    refused = client.post("/widget/api/conversations")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_an_admin_may_refuse_every_claim_of_a_chat_from_before_secrets(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    widget = settings.channels.widget.model_copy(update={"legacy_claim_hours": 0})
    app = create_app(settings.model_copy(update={"channels": settings.channels.model_copy(update={"widget": widget})}))
    try:
        conversation_id = legacy(app.extensions["parley"].log)
        refused = app.test_client().post("/widget/api/conversations", json={"conversation_id": conversation_id})
        assert refused.status_code == 401
    finally:
        app.extensions["parley"].close()
