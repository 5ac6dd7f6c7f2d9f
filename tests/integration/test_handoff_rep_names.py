"""A rep's Slack reply is acked at once; their name (users.info) and the thread's note are the worker's job."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session

from parley.stores.desk import DeskThread
from parley.webhooks.app import create_app
from tests.integration.handoff_support import PAYLOADS, Desk, SlackApi, handoff_settings
from tests.integration.test_handoff import Customer
from tests.stubs.server import Call, StubServer, serving


class SlowDirectory(SlackApi):
    """users.info answers only once the test opens the gate: a Slack that takes its time."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, call: Call) -> tuple[int, dict[str, Any]]:
        if call.endpoint == "users.info":
            self.gate.wait(timeout=30)
        return super().__call__(call)


@pytest.fixture
def api() -> SlowDirectory:
    return SlowDirectory()


@pytest.fixture
def slack(api: SlowDirectory) -> Iterator[StubServer]:
    with serving(api) as server:
        yield server
        api.gate.set()


@pytest.fixture
def app(tmp_path: Path, slack: StubServer) -> Iterator[Flask]:
    app = create_app(handoff_settings(tmp_path, slack))
    yield app
    app.extensions["parley"].close()


def reply_without_profile(desk: Desk, thread: str, text: str, event_id: str) -> int:
    # Slack leaves user_profile out of some message events: then only users.info knows the name.
    body = json.loads((PAYLOADS / "slack" / "handoff_thread_reply.json").read_text())
    body["event_id"] = event_id
    del body["event"]["user_profile"]
    body["event"].update(text=text, thread_ts=thread, ts=f"17325299{event_id[-2:]}.000300")
    return desk._post("/slack/events", json.dumps(body).encode(), "application/json")


def test_the_ack_does_not_wait_for_users_info_and_the_customer_still_sees_the_name(
        app: Flask, client: FlaskClient, api: SlowDirectory, slack: StubServer) -> None:
    customer, desk = Customer(client, app), Desk(client, api)
    customer.says("I want to talk to a person")
    thread = desk.wait_for_thread()
    # Acked while users.info is still unanswered: the request made no such call.
    assert reply_without_profile(desk, thread, "Bo here, looking now.", "Ev0NAME01") == 200
    api.gate.set()
    assert customer.sees("Bo here, looking now.")["author"] == "Bo"
    assert reply_without_profile(desk, thread, "Found it.", "Ev0NAME02") == 200
    assert customer.sees("Found it.")["author"] == "Bo"
    assert len(slack.to("users.info")) == 1  # remembered, not asked per message
    with Session(app.extensions["parley"].adapters["desk"].directory.database) as session:
        assert session.get(DeskThread, thread).rep_user == "U0REPANA"  # noted by the worker
