"""Telegram answers carry inline keyboards; a press comes back as a ``callback_query`` update.

The keyboard the stub records is the one Telegram would show (the stub refuses what Telegram
refuses: empty labels, ``callback_data`` over 64 bytes); a press is replayed as Telegram sends it,
with the answer it was under, keyboard included, and is answered so the button stops spinning.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, select

from parley.stores.sql import Feedback
from tests.integration.test_telegram import app, payload, post, telegram  # noqa: F401 - fixtures
from tests.stubs.server import StubServer

CHAT = "telegram:5550001"


def keyboard_of(call: Any) -> list[list[dict[str, str]]]:
    return json.loads(call.params["reply_markup"])["inline_keyboard"]


def press(client: FlaskClient, keyboard: list[list[dict[str, str]]], data: str, *, query_id: str) -> int:
    """The customer presses the button with ``data`` under the answer that carried ``keyboard``."""
    update = json.loads(payload("callback_query.json"))
    update["update_id"] += int(query_id[-3:])
    update["callback_query"].update(id=query_id, data=data)
    update["callback_query"]["message"]["reply_markup"] = {"inline_keyboard": keyboard}
    return post(client, json.dumps(update).encode()).status_code


def greeting(client: FlaskClient, telegram: StubServer) -> Any:  # noqa: F811 - the fixture
    hello = json.loads(payload("text.json"))
    hello["message"]["text"] = "hello"
    hello["message"]["from"]["language_code"] = "en"  # the payload's customer writes in Spanish
    assert post(client, json.dumps(hello).encode()).status_code == 200
    [call] = telegram.wait_for("sendMessage")
    return call


def test_quick_replies_are_an_inline_keyboard_and_a_press_is_the_next_message(
        app: Flask, client: FlaskClient, telegram: StubServer) -> None:  # noqa: F811 - fixtures
    keyboard = keyboard_of(greeting(client, telegram))
    assert [[button["text"] for button in row] for row in keyboard] == [
        ["Track my order"], ["Start a return"], ["Reset my password"], ["Talk to a person"]]

    assert press(client, keyboard, "q:2", query_id="2383924875019323001") == 200
    [answered] = telegram.wait_for("answerCallbackQuery")
    assert answered.params["callback_query_id"] == "2383924875019323001"
    _, answer = telegram.wait_for("sendMessage", count=2)
    assert "Forgot password" in answer.params["text"]
    transcript = app.extensions["parley"].log.transcript(CHAT, "telegram")
    assert transcript is not None and [m.text for m in transcript if m.direction == "in"] == [
        "hello", "Reset my password"]


def test_a_press_delivered_twice_is_answered_once(client: FlaskClient, telegram: StubServer) -> None:  # noqa: F811
    keyboard = keyboard_of(greeting(client, telegram))
    for _ in range(2):  # Telegram redelivers an update it saw no 200 for
        assert press(client, keyboard, "q:0", query_id="2383924875019323002") == 200
    assert len(telegram.settle("sendMessage", at_least=2)) == 2


def test_a_grounded_answer_gets_thumbs_that_record_feedback(app: Flask, client: FlaskClient,  # noqa: F811
                                                            telegram: StubServer) -> None:  # noqa: F811
    assert post(client, payload("text.json")).status_code == 200
    [answer] = telegram.wait_for("sendMessage")
    [thumbs] = keyboard_of(answer)
    assert [button["text"] for button in thumbs] == ["👍 Helpful", "👎 Not helpful"]
    transcript = app.extensions["parley"].log.transcript(CHAT, "telegram")
    assert transcript is not None
    answer_id = transcript[-1].id
    assert thumbs[1]["callback_data"] == f"f:-1:{answer_id}"

    assert press(client, [thumbs], thumbs[1]["callback_data"], query_id="2383924875019323003") == 200
    telegram.wait_for("answerCallbackQuery")
    with Session(app.extensions["parley"].log.database) as session:
        rows = session.scalars(select(Feedback).where(Feedback.message_id == answer_id)).all()
    assert [(row.conversation_id, row.score) for row in rows] == [(CHAT, -1)]
    assert len(telegram.settle("sendMessage", at_least=1)) == 1  # feedback is no message to answer


def test_a_button_that_is_not_ours_is_answered_and_ignored(app: Flask, client: FlaskClient,  # noqa: F811
                                                           telegram: StubServer) -> None:  # noqa: F811
    foreign = [[{"text": "Vote", "callback_data": "poll:7"}]]
    assert press(client, foreign, "poll:7", query_id="2383924875019323004") == 200
    telegram.wait_for("answerCallbackQuery")
    assert app.extensions["parley"].inbox.depth() == 0


def test_a_spanish_conversation_reads_its_source_label_and_thumbs_in_spanish(
        client: FlaskClient, telegram: StubServer) -> None:  # noqa: F811 - the fixture
    # Two words: too few to outvote the Spanish app, and enough to find the article.
    update = json.loads(payload("text.json"))
    update["message"]["text"] = "reset password"
    assert post(client, json.dumps(update).encode()).status_code == 200
    [answer] = telegram.wait_for("sendMessage")
    assert "\n\nFuente: " in answer.params["text"] and "Source:" not in answer.params["text"]
    [thumbs] = keyboard_of(answer)
    assert [button["text"] for button in thumbs] == ["👍 Útil", "👎 No útil"]
