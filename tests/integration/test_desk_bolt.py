"""The reps' desk on Bolt, as a rep uses it: "Wrong answer?", "Send article", the App Home tab.

Protocol-exact interaction payloads (tests/payloads/slack) are signed and replayed against the
Flask app; the loopback Slack API records views.open / views.publish / chat.update, checked
against Slack's documented limits (tests/stubs/slack_rules.py), and the tests read what the rep
would see in them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlmodel import Session

from parley.settings.texts import TextsSettings
from parley.stores.desk import DeskHomeViewer
from parley.stores.sql import Label, Message
from parley.webhooks.app import create_app
from tests.integration.handoff_support import (PAYLOADS, Desk, SlackApi, handoff_settings, header_answers, header_buttons,
                                               header_state, signed, wait_until)
from tests.integration.test_handoff import Customer
from tests.stubs import slack_rules
from tests.stubs.server import Call, serving


@pytest.fixture
def api() -> SlackApi:
    return SlackApi()


@pytest.fixture
def app(tmp_path: Path, api: SlackApi) -> Iterator[Flask]:
    with serving(api) as slack:
        app = create_app(handoff_settings(tmp_path, slack))
        yield app
        app.extensions["parley"].close()


@pytest.fixture
def desk(client: FlaskClient, api: SlackApi) -> Desk:
    return Desk(client, api)


@pytest.fixture
def customer(client: FlaskClient, app: Flask) -> Customer:
    return Customer(client, app)


def interact(client: FlaskClient, payload: dict[str, Any]) -> Any:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return client.post("/slack/interactions", data=body, content_type="application/x-www-form-urlencoded",
                       headers=signed(body))


def payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / "slack" / name).read_text())


def opened(api: SlackApi, count: int) -> dict[str, Any]:
    """The view of the ``count``-th views.open Slack accepted (its trigger id checked)."""
    calls = wait_until(lambda: [p for e, p in api.desk_calls if e == "views.open"][count - 1:] or None)
    assert calls, f"no views.open #{count}: {api.desk_calls}"
    view = calls[0]["view"]
    return json.loads(view) if isinstance(view, str) else view


def texts_of(view: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in view["blocks"] if "text" in b)


def submit(client: FlaskClient, view: dict[str, Any], article: str) -> Any:
    body = payload("view_submission.json")
    body["view"].update(callback_id=view["callback_id"], private_metadata=view["private_metadata"])
    body["view"]["state"]["values"]["parley_article"]["parley_article"]["selected_option"]["value"] = article
    return interact(client, body)


def test_wrong_answer_labels_exactly_that_answer_from_a_searchable_modal(
        app: Flask, client: FlaskClient, customer: Customer, desk: Desk, api: SlackApi) -> None:
    customer.says("How do I reset my password?")
    customer.says("where is my parcel?")
    customer.says("I want to talk to a person")
    thread = desk.wait_for_thread()
    [(_, header)] = desk.headers()
    answers = header_answers(header)
    assert [("reset my password" in text, "parcel" in text) for text, _ in answers] == [
        (True, False), (False, True)]

    click = payload("handoff_block_actions.json")
    click["container"]["message_ts"] = click["message"]["ts"] = thread
    click["actions"][0].update(action_id="parley_wrong_answer_0", value=answers[0][1])
    assert interact(client, click).status_code == 200
    modal = opened(api, 1)
    assert modal["title"]["text"] == "Wrong answer?" and modal["submit"]["text"] == "Label"
    assert "How do I reset my password?" in texts_of(modal)
    [picker] = [b["element"] for b in modal["blocks"] if b["type"] == "input"]
    assert picker["type"] == "external_select"

    suggest = payload("block_suggestion.json")
    suggest["value"] = "parcel lost"
    options = interact(client, suggest).get_json()["options"]
    slack_rules.check_options(options)
    values = [option["value"] for option in options]
    assert "missing-package" in values[:3] and values[-1] == "handoff"  # "None fits" last
    suggest["value"] = ""
    assert len(interact(client, suggest).get_json()["options"]) > 10  # browsing, before typing

    refused = submit(client, modal, "no-such-article").get_json()
    assert refused == {"response_action": "errors",
                       "errors": {"parley_article": "There is no such article any more: search again."}}
    done = submit(client, modal, "two-factor-authentication").get_json()
    assert done["response_action"] == "update" and "Labelled" in texts_of(done["view"])
    slack_rules.check_view(done["view"])
    with Session(app.extensions["parley"].log.database) as session:
        [label] = session.scalars(select(Label)).all()
        message = session.scalars(select(Message).where(Message.public_id == label.message_id)).one()
    assert (message.text, label.intent, label.source) == (
        "How do I reset my password?", "two-factor-authentication", "slack")

    forged = dict(modal, private_metadata=json.dumps({"c": customer.conversation_id, "a": "not-an-answer"}))
    gone = submit(client, forged, "missing-package").get_json()
    assert "no longer in the conversation log" in texts_of(gone["view"])


def test_send_article_app_home_and_a_header_that_follows_the_handoff(
        app: Flask, client: FlaskClient, customer: Customer, desk: Desk, api: SlackApi) -> None:
    customer.says("my parcel never arrived")
    customer.says("talk to a person")
    thread = desk.wait_for_thread()

    home = json.dumps(payload("app_home_opened.json")).encode()
    assert client.post("/slack/events", data=home, content_type="application/json",
                       headers=signed(home)).status_code == 200
    [published] = [p for e, p in api.desk_calls if e == "views.publish"]
    view = view_of(published)
    assert published["user_id"] == "U0REPANA" and view["type"] == "home"
    [request] = [b for b in view["blocks"] if b.get("accessory")]
    assert "**" not in request["text"]["text"] and "*widget* customer" in request["text"]["text"]
    assert "waiting *under a minute*: customer asked for a person" in request["text"]["text"]
    assert request["accessory"]["value"] == customer.conversation_id

    shortcut = payload("message_action.json")
    shortcut["message"]["thread_ts"] = thread
    assert interact(client, shortcut).status_code == 200
    modal = opened(api, 1)
    assert modal["callback_id"] == "parley_send_article" and modal["submit"]["text"] == "Send"
    assert submit(client, modal, "missing-package").status_code == 200
    sent = customer.sees("**My package says delivered but I didn't receive it**")
    assert sent["author"] == "ana.lopez"
    desk.wait_in_thread(thread, "ana.lopez sent an article to the customer")
    claimed = desk.wait_for_update(thread, "Claimed by ana.lopez")
    assert [action for action, _ in header_buttons(claimed)] == [
        "parley_send_article", "parley_hand_back", "parley_resolve"]
    # The tab Ana has open follows the claim by itself: her request is no longer waiting.
    def refreshed_tab() -> dict[str, Any] | None:
        published = [p for e, p in api.desk_calls if e == "views.publish"]
        return published[-1] if len(published) > 1 and "Nobody is waiting" in texts_of(
            view_of(published[-1])) else None
    assert (tab := wait_until(refreshed_tab)) is not None and tab["user_id"] == "U0REPANA"

    elsewhere = payload("message_action.json")  # a message outside any conversation's thread
    elsewhere["message"].pop("thread_ts")
    assert interact(client, elsewhere).status_code == 200
    assert "not in a conversation's thread" in texts_of(opened(api, 2))

    assert client.post("/slack/events", data=home, content_type="application/json",
                       headers=signed(home)).status_code == 200
    later = [p for e, p in api.desk_calls if e == "views.publish"][-1]
    assert "Nobody is waiting for a person right now" in texts_of(view_of(later))

    # Bolt's own signature check, and bodies it could not parse: refused, never a trace.
    body = urlencode({"payload": json.dumps(payload("block_suggestion.json"))}).encode()
    refused = client.post("/slack/interactions", data=body, content_type="application/x-www-form-urlencoded",
                          headers=signed(body, secret="not-the-secret"))
    assert refused.status_code == 401 and "Traceback" not in refused.get_data(as_text=True)
    listed = b"payload=%5B1%5D"  # JSON, but not an object
    response = client.post("/slack/interactions", data=listed, content_type="application/x-www-form-urlencoded",
                           headers=signed(listed))
    assert (response.status_code, response.get_json()) == (400, {"error": "malformed payload"})
    assert "Wrong answer?" in desk.command("help")["text"]  # Bolt's app.command, ephemeral


def view_of(published: dict[str, Any]) -> dict[str, Any]:
    """The view of a recorded views.publish (the SDK sends it as JSON text in a form, or as an object)."""
    view = published["view"]
    return json.loads(view) if isinstance(view, str) else view


class HomeLimitedApi(SlackApi):
    """Slack whose views.publish answers 429 (Retry-After 30) once ``limited`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.limited = False
        self.publishes = 0  # views.publish calls, refused or not

    def __call__(self, call: Call) -> tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, str]]:
        if call.endpoint == "views.publish":
            self.publishes += 1
            if self.limited:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "30"}
        return super().__call__(call)


def test_the_app_home_failing_never_holds_up_the_desk(tmp_path: Path) -> None:
    api = HomeLimitedApi()
    with serving(api) as slack:
        app = create_app(handoff_settings(tmp_path, slack))
        try:
            client, database = app.test_client(), app.extensions["parley"].log.database
            desk = Desk(client, api)

            def reps_open_the_tab() -> None:
                for rep in ("U0REPANA", "U0REPBO", "U0REPCY"):
                    event = payload("app_home_opened.json")
                    event["event"]["user"] = rep
                    home = json.dumps(event).encode()
                    assert client.post("/slack/events", data=home, content_type="application/json",
                                       headers=signed(home)).status_code == 200

            reps_open_the_tab()
            assert api.publishes == 3

            # The database loses the tab's table: the handoff, the claim and the reply still go through.
            with database.begin() as connection:
                connection.execute(text("DROP TABLE deskhomeviewer"))
            first = Customer(client, app)
            first.says("talk to a person")
            thread = desk.wait_for_thread()
            assert desk.click(thread, "claim") == 200
            first.sees("has joined the conversation")
            desk.reply(thread, "Found your parcel, it ships today.")
            first.sees("Found your parcel")
            assert [ts for ts, _ in desk.headers()].count(thread) == 1  # nothing posted twice
            assert api.publishes == 3
            inbox = app.extensions["parley"].inbox
            assert inbox.depth() == 0 and inbox.dead_letters == []  # nothing failed, nothing set aside

            # Slack rate-limits the tab: the refresh a new request brings stops at the first 429,
            # and the next request's refresh waits out the Retry-After instead of asking again.
            DeskHomeViewer.__table__.create(database)
            reps_open_the_tab()
            assert api.publishes == 6
            api.limited = True
            Customer(client, app).says("talk to a person")
            desk.wait_for_thread(2)
            assert wait_until(lambda: api.publishes == 7)
            Customer(client, app).says("talk to a person")
            desk.wait_for_thread(3)
            assert api.publishes == 7
        finally:
            app.extensions["parley"].close()


GERMAN_DESK = {
    "needs_person": "**Kunde auf {channel}** ({customer}) möchte einen Menschen: {reason}.",
    "reply_hint": "Antworte in diesem Thread; Nachrichten, die mit `{prefix}` beginnen, bleiben intern.",
    "claim": "Übernehmen", "send_article": "Artikel senden", "hand_back": "Zurück an den Bot",
    "resolve": "Erledigt", "waiting": "Wartet seit {wait}", "under_a_minute": "weniger als einer Minute",
    "claimed": "Übernommen von {actor}", "claimed_note": "{actor} hat übernommen.",
    "home_title": "Offene Anfragen",
}


def test_the_desk_speaks_the_reps_language(tmp_path: Path, api: SlackApi) -> None:
    with serving(api) as slack:
        settings = handoff_settings(tmp_path, slack)
        texts = TextsSettings.model_validate({**settings.texts.model_dump(), "desk": GERMAN_DESK,
                                              "desk_language": "de"})
        app = create_app(settings.model_copy(update={"texts": texts}))
        client = app.test_client()
        customer, desk = Customer(client, app), Desk(client, api)
        try:
            customer.says("talk to a person")  # an English-speaking customer, a German desk
            thread = desk.wait_for_thread()
            [(_, first)] = desk.headers()
            shown = json.dumps(first["blocks"], ensure_ascii=False)
            assert first["text"].startswith("*Kunde auf widget*") and "`//` beginnen, bleiben intern" in shown
            assert [label for _, label in header_buttons(first)] == [
                "Übernehmen", "Artikel senden", "Zurück an den Bot", "Erledigt"]
            assert header_state(first) == "Wartet seit weniger als einer Minute"

            home = json.dumps(payload("app_home_opened.json")).encode()
            assert client.post("/slack/events", data=home, content_type="application/json",
                               headers=signed(home)).status_code == 200
            [published] = wait_until(lambda: [p for e, p in api.desk_calls if e == "views.publish"] or None)
            assert view_of(published)["blocks"][0]["text"]["text"] == "Offene Anfragen"

            assert desk.click(thread, "claim") == 200
            desk.wait_in_thread(thread, "ana.lopez hat übernommen.")
            assert "Übernommen von" in header_state(desk.wait_for_update(thread, "Übernommen von"))
            customer.sees("ana.lopez from our support team has joined the conversation.")  # theirs stays English
        finally:
            app.extensions["parley"].close()
