"""Handoff to a person end to end: a widget customer, a rep in a Slack thread (signed payloads, loopback API)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlmodel import Session

from parley.stores.desk import DeskThread
from parley.stores.sql import HandoffEvent, Label, Message
from parley.webhooks.app import create_app
from tests.integration.handoff_support import (Desk, SlackApi, handoff_settings, header_buttons, header_state,
                                               signed, wait_until)
from tests.integration.redis_processes import REDIS_URL, delete_prefix
from tests.stubs.server import StubServer, serving


@pytest.fixture
def api() -> SlackApi:
    return SlackApi()


@pytest.fixture
def slack(api: SlackApi) -> Iterator[StubServer]:
    with serving(api) as server:
        yield server


@pytest.fixture
def app(tmp_path: Path, slack: StubServer, database: dict[str, str]) -> Iterator[Flask]:
    app = create_app(handoff_settings(tmp_path, slack, **database))
    yield app
    app.extensions["parley"].close()


@pytest.fixture
def desk(client: FlaskClient, api: SlackApi) -> Desk:
    return Desk(client, api)


class Customer:
    """A widget customer: what they send, and what their widget shows (history and live events)."""

    def __init__(self, client: FlaskClient, app: Flask) -> None:
        self.client, self.app = client, app
        self.conversation_id: str | None = None
        self.secret: dict[str, str] = {}  # the conversation's secret, as the widget keeps it

    def says(self, text: str) -> dict:
        body = {"text": text, **({"conversation_id": self.conversation_id} if self.conversation_id else {})}
        response = self.client.post("/widget/api/messages", json=body, headers=self.secret)
        assert response.status_code == 200, response.get_data(as_text=True)
        data = response.get_json()
        self.conversation_id = data["conversation_id"]
        self.secret = self.secret or {"X-Parley-Secret": data["secret"]}
        return data

    def history(self) -> list[dict]:
        return self.client.get(f"/widget/api/conversations/{self.conversation_id}",
                               headers=self.secret).get_json()["messages"]

    def sees(self, needle: str) -> dict:
        found = wait_until(lambda: next((m for m in self.history() if needle in m["text"]), None))
        assert found, f"{needle!r} never reached the widget; it shows {[m['text'] for m in self.history()]}"
        return found

    def live(self) -> list[dict]:
        """What the widget's live stream carries (the mailbox the SSE endpoint reads)."""
        mailbox = self.app.extensions["parley"].adapters["widget"].mailbox
        events = mailbox.after(self.conversation_id, "0", 0.0)
        return [{"text": r.text, "author": r.author}
                for event in events if event.kind == "replies" for r in event.replies]


@pytest.fixture
def customer(client: FlaskClient, app: Flask) -> Customer:
    return Customer(client, app)


def events(app: Flask, conversation_id: str) -> list[tuple[str, str | None]]:
    with Session(app.extensions["parley"].log.database) as session:
        rows = session.scalars(select(HandoffEvent).where(HandoffEvent.conversation_id == conversation_id)
                               .order_by(HandoffEvent.id)).all()
    assert all(row.created_at is not None for row in rows)
    return [(row.kind, row.actor) for row in rows]


def test_a_rep_runs_a_whole_widget_conversation_from_slack(app: Flask, customer: Customer,
                                                           desk: Desk) -> None:
    customer.says("where is my parcel?")
    asked = customer.says("I want to talk to a person")
    assert "let our support team know" in asked["replies"][0]["text"]

    thread = desk.wait_for_thread()
    [(_, header)] = desk.headers()
    section = header["blocks"][0]["text"]["text"]
    assert "*Customer on widget*" in section and "customer asked for a person" in section
    assert "where is my parcel?" in section and "I want to talk to a person" in section
    assert "Messages starting with `//` are internal notes" in section
    assert header_buttons(header) == [("parley_claim", "Claim"), ("parley_send_article", "Send article"),
                                      ("parley_hand_back", "Hand back to bot"), ("parley_resolve", "Resolve")]
    assert "Waiting for a person" in header_state(header)

    # The bot is muted: a question it could answer goes to the rep, and the widget gets no bot reply.
    muted = customer.says("How do I reset my password?")
    assert muted["replies"] == [] and muted["with_person"] is True
    desk.wait_in_thread(thread, "*Customer:* How do I reset my password?")

    assert desk.reply(thread, "Hi, I'm Ana from support. Let me check your order.") == 200
    shown = customer.sees("Let me check your order")
    assert shown["author"] == "Ana" and shown["direction"] == "out"
    # Her first reply claimed it: the header says so, and Claim is gone.
    claimed = desk.wait_for_update(thread, "Claimed by Ana")
    assert header_buttons(claimed) == [("parley_send_article", "Send article"),
                                       ("parley_hand_back", "Hand back to bot"), ("parley_resolve", "Resolve")]
    # The log is written just before the live event is published: wait for the live one too.
    ana = {"text": "Hi, I'm Ana from support. Let me check your order.", "author": "Ana"}
    assert wait_until(lambda: ana in customer.live()), customer.live()

    assert desk.reply(thread, "// VIP customer, refund the shipping") == 200
    assert desk.event("handoff_bot_echo.json", thread) == 200
    assert desk.event("handoff_message_changed.json", thread) == 200
    customer.says("ok thanks")
    desk.wait_in_thread(thread, "*Customer:* ok thanks")

    assert desk.click(thread, "resolve") == 200
    prompt = customer.sees("How would you rate the help")
    assert prompt["quick_replies"] == ["1", "2", "3", "4", "5"]
    rated = customer.says("5")
    assert [r["text"] for r in rated["replies"]] == ["Thank you for your rating!"]
    desk.wait_in_thread(thread, "The customer rated the help 5/5.")
    resolved = desk.wait_for_update(thread, "rated 5/5")
    assert "*Resolved* by ana.lopez" in header_state(resolved) and header_buttons(resolved) == []

    texts = [m["text"] for m in customer.history()]
    assert not any("VIP" in text or "(edited)" in text or "Forgot password" in text for text in texts)
    assert events(app, customer.conversation_id) == [
        ("requested", customer.conversation_id), ("claimed", "Ana"), ("first_reply", "Ana"),
        ("resolved", "ana.lopez"), ("rating", None)]
    # Back with the bot after the rating.
    assert "Forgot password" in customer.says("How do I reset my password?")["replies"][0]["text"]


def test_a_second_request_opens_no_second_thread_and_hand_back_resumes_the_bot(
        app: Flask, customer: Customer, desk: Desk) -> None:
    customer.says("agent please")
    thread = desk.wait_for_thread()
    customer.says("hello? I asked to speak to a person")
    desk.wait_in_thread(thread, "*Customer:* hello? I asked to speak to a person")
    customer.sees("Your request is already with our support team")
    assert len(desk.headers()) == 1

    assert desk.click(thread, "claim") == 200
    customer.sees("ana.lopez from our support team has joined the conversation.")
    desk.wait_in_thread(thread, "Claimed by ana.lopez.")
    assert desk.click(thread, "hand_back") == 200
    customer.sees("You're back with the assistant")
    assert "Forgot password" in customer.says("How do I reset my password?")["replies"][0]["text"]

    customer.says("talk to a human")  # a new request after hand-back opens a new thread
    second = desk.wait_for_thread(count=2)
    assert second != thread
    with Session(app.extensions["parley"].log.database) as session:
        rows = session.scalars(select(DeskThread).order_by(DeskThread.handoff)).all()
    assert [(row.thread_ts, row.handoff) for row in rows] == [(thread, 1), (second, 2)]


def test_rep_commands_answer_privately_and_label_the_bots_last_answer(
        app: Flask, customer: Customer, desk: Desk) -> None:
    asked = desk.command("ask how do I reset my password")
    assert asked["response_type"] == "ephemeral"
    assert "How do I reset my password?" in asked["text"] and "reset-password" in asked["text"]
    assert "ephemeral" == desk.command("")["response_type"]

    customer.says("my parcel never arrived")
    customer.says("talk to a person")
    thread = desk.wait_for_thread()
    assert "Claim or reply in a conversation's thread first" in desk.command("label missing-package")["text"]
    desk.reply(thread, "Sorry about that, checking.")
    customer.sees("checking")
    assert "no article `nope`" in desk.command("label nope")["text"]
    assert "Labelled" in desk.command("label missing-package")["text"]
    with Session(app.extensions["parley"].log.database) as session:
        [label] = session.scalars(select(Label)).all()
        message = session.scalars(select(Message).where(Message.public_id == label.message_id)).one()
    assert (message.text, label.intent, label.source) == (
        "my parcel never arrived", "missing-package", "slack")


def test_bad_or_foreign_desk_input_is_refused_or_ignored_never_a_500(app: Flask, client: FlaskClient,
                                                                     desk: Desk, api: SlackApi) -> None:
    body = b"payload=%7B%7D"
    assert client.post("/slack/interactions", data=body, content_type="application/x-www-form-urlencoded",
                       headers=signed(body, secret="wrong")).status_code == 401
    junk = b"payload=not-json"
    response = client.post("/slack/interactions", data=junk, content_type="application/x-www-form-urlencoded",
                           headers=signed(junk))
    assert (response.status_code, response.get_json()) == (400, {"error": "malformed payload"})
    assert client.post("/slack/commands", data=b"text=ask", content_type="application/x-www-form-urlencoded",
                       headers={"X-Slack-Request-Timestamp": "1",
                                "X-Slack-Signature": "v0=0"}).status_code == 401
    # A reply in a thread Parley never opened, and a button on an unknown message: ignored.
    assert desk.reply("1700000000.000001", "hello?") == 200
    assert desk.click("1700000000.000001", "resolve") == 200
    unknown = json.dumps({"type": "view_submission", "user": {"id": "U1"}}).encode()
    form = b"payload=" + unknown.replace(b'"', b"%22")
    assert client.post("/slack/interactions", data=form, content_type="application/x-www-form-urlencoded",
                       headers=signed(form)).status_code == 200
    assert app.extensions["parley"].inbox.depth() == 0
    assert api.posted == []


def test_without_a_handoff_channel_the_desk_routes_are_off(tmp_path: Path, slack: StubServer) -> None:
    settings = handoff_settings(tmp_path, slack)
    settings = settings.model_copy(update={"channels": settings.channels.model_copy(update={
        "slack": settings.channels.slack.model_copy(update={"handoff_channel": None})})})
    app = create_app(settings)
    try:
        client = app.test_client()
        body = b"payload=%7B%7D"
        response = client.post("/slack/interactions", data=body,
                               content_type="application/x-www-form-urlencoded", headers=signed(body))
        assert (response.status_code, response.get_json()) == (404, {"error": "not found"})
        reply = client.post("/widget/api/messages", json={"text": "talk to a person"}).get_json()
        assert "can't put you through to a person" in reply["replies"][0]["text"]
    finally:
        app.extensions["parley"].close()


def test_customer_and_rep_on_different_processes_share_one_handoff(
        tmp_path: Path, slack: StubServer, api: SlackApi, postgres_url: str) -> None:
    """Two app instances on one Redis and one database: nothing of the handoff lives in a process."""
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    settings = handoff_settings(tmp_path, slack, REDIS_URL=REDIS_URL, DATABASE_URL=postgres_url)
    settings = settings.model_copy(update={"storage": settings.storage.model_copy(update={"key_prefix": prefix})})
    front, back = create_app(settings), create_app(settings)
    try:
        customer, desk = Customer(front.test_client(), front), Desk(back.test_client(), api)
        customer.says("talk to a person")
        thread = desk.wait_for_thread()
        customer.says("are you there?")
        desk.wait_in_thread(thread, "*Customer:* are you there?")
        assert desk.reply(thread, "Yes, Ana here.") == 200  # arrives at the other process
        assert customer.sees("Yes, Ana here.")["author"] == "Ana"
        assert desk.click(thread, "resolve") == 200
        customer.sees("How would you rate the help")
        assert customer.says("4")["replies"][0]["text"] == "Thank you for your rating!"
        assert len(desk.headers()) == 1
    finally:
        for app in (front, back):
            app.extensions["parley"].close()
        delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)
