"""Telegram end to end: webhook updates with the secret token in, Bot API calls to a loopback stub out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from parley.channels.formats import TELEGRAM
from parley.channels.telegram import TelegramAdapter
from parley.channels.text import to_telegram_html, with_sources
from parley.cli import main
from parley.core.envelope import AnswerMeta, Reply, Source
from parley.errors import UpstreamError
from parley.webhooks.app import create_app
from tests.conftest import CONFIG, ROOT, make_settings
from tests.integration.llm_support import llm_settings, openai_stub  # noqa: F401 - fixture
from tests.stubs.openai_stub import OpenAIStub, Outcome
from tests.stubs.server import StubServer, serving, telegram_api

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "telegram"
BOT_TOKEN = "123456789:AAHparleyTestTokenXXXXXXXXXXXXXXXXX"
SECRET = "parley-webhook-secret_0123456789"


def payload(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def post(client: FlaskClient, body: bytes, *, secret: str = SECRET, content_type: str = "application/json"):
    return client.post("/telegram/webhook", data=body, content_type=content_type,
                       headers={"X-Telegram-Bot-Api-Secret-Token": secret})


@pytest.fixture
def telegram() -> Iterator[StubServer]:
    with serving(telegram_api()) as server:
        yield server


@pytest.fixture
def app(tmp_path: Path, telegram: StubServer) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, TELEGRAM_BOT_TOKEN=BOT_TOKEN, TELEGRAM_SECRET_TOKEN=SECRET,
                                   TELEGRAM_API_URL=telegram.url))
    yield app
    app.extensions["parley"].close()


def test_a_text_message_is_answered_in_html(app: Flask, client: FlaskClient, telegram: StubServer) -> None:
    assert post(client, payload("text.json")).status_code == 200
    [call] = telegram.wait_for("sendMessage")
    assert app.extensions["parley"].log.transcript("telegram:5550001", "telegram") is not None
    assert call.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert call.params["chat_id"] == "5550001" and call.params["parse_mode"] == "HTML"
    text = call.params["text"]
    assert "open <b>Sign in</b> and choose <i>Forgot password?</i>" in text
    assert "<b>Settings &gt; Security &gt; Change password</b>" in text
    assert text.endswith('Source: <a href="https://help.acme.example/account/reset-password">'
                         "How do I reset my password?</a>")


def test_typing_is_shown_while_the_answer_is_prepared(client: FlaskClient, telegram: StubServer) -> None:
    assert post(client, payload("text.json")).status_code == 200
    [action] = telegram.wait_for("sendChatAction")
    assert (action.params["chat_id"], action.params["action"]) == ("5550001", "typing")


def test_an_edit_is_not_answered_again(app: Flask, client: FlaskClient, telegram: StubServer) -> None:
    # One behaviour on every channel (Slack ignores message_changed alike): the answer to what the
    # customer sent stands; an edit is not a new question, and answering it again repeats the bot.
    assert post(client, payload("text.json")).status_code == 200
    assert post(client, payload("edited_message.json")).status_code == 200
    [call] = telegram.settle("sendMessage", at_least=1)
    assert "Forgot password" in call.params["text"]
    transcript = app.extensions["parley"].log.transcript("telegram:5550001", "telegram")
    assert transcript is not None and [m.text for m in transcript if m.direction == "in"] == [
        "How do I reset my password?"]


def test_a_photo_gets_the_text_only_reply(client: FlaskClient, telegram: StubServer) -> None:
    assert post(client, payload("photo.json")).status_code == 200
    [call] = telegram.wait_for("sendMessage")
    # In Spanish: the sender's Telegram app is (language_code "es"), and a photo has no words to say otherwise.
    assert "por ahora solo puedo leer texto" in call.params["text"]


def test_a_dice_or_a_shared_location_gets_the_text_only_reply(client: FlaskClient, telegram: StubServer) -> None:
    sent = []
    for n, extra in enumerate(({"dice": {"emoji": "🎲", "value": 4}},
                               {"location": {"latitude": 40.4167754, "longitude": -3.7037902}})):
        update = json.loads(payload("text.json"))
        update["update_id"] += 500 + n
        del update["message"]["text"]
        update["message"].update(message_id=500 + n, **extra)
        assert post(client, json.dumps(update).encode()).status_code == 200
        sent = telegram.wait_for("sendMessage", count=n + 1)
    assert len(sent) == 2 and all("solo puedo leer texto" in call.params["text"] for call in sent)


def test_the_same_update_twice_is_answered_once(client: FlaskClient, telegram: StubServer) -> None:
    assert post(client, payload("text.json")).status_code == 200
    assert post(client, payload("text.json")).status_code == 200
    assert len(telegram.settle("sendMessage", at_least=1)) == 1


def test_service_messages_and_bots_are_acked_and_ignored(client: FlaskClient, telegram: StubServer) -> None:
    from_bot = json.loads(payload("text.json"))
    from_bot["update_id"] += 100
    from_bot["message"]["from"]["is_bot"] = True
    callback = {"update_id": 813400100, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "chat_instance": "-1", "data": "x",
        "from": {"id": 5550001, "is_bot": False, "first_name": "Ana"}}}
    for body in (payload("new_chat_members.json"), json.dumps(from_bot).encode(),
                 json.dumps(callback).encode()):
        assert post(client, body).status_code == 200
    assert post(client, payload("text.json")).status_code == 200
    assert len(telegram.settle("sendMessage", at_least=1)) == 1


def test_bad_requests_are_refused_and_never_answered(app: Flask, client: FlaskClient,
                                                     telegram: StubServer) -> None:
    body = payload("text.json")
    cases = [
        (client.post("/telegram/webhook", data=body, content_type="application/json"), 401),
        (post(client, body, secret="guess"), 401),
        (post(client, body, secret=SECRET + "x"), 401),
        (post(client, b"{not json"), 400),
        (post(client, b"[1, 2]"), 400),
        (post(client, b'{"message": {"text": "no update id"}}'), 400),
        (post(client, body, content_type="text/plain"), 415),
        (post(client, b"x" * 70_000), 413),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.status_code, response.get_data())
    assert app.extensions["parley"].inbox.depth() == 0
    assert telegram.to("sendMessage") == []


def test_telegram_is_off_without_its_secrets(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), start_workers=False)
    assert post(app.test_client(), payload("text.json")).status_code == 404


def test_long_replies_are_split_at_4096_with_balanced_html(telegram: StubServer) -> None:
    adapter = TelegramAdapter(bot_token=BOT_TOKEN, secret_token=SECRET, api_url=telegram.url,
                              max_text_chars=2000)
    sources = (Source(id="a", title="Help & FAQ"),)
    try:
        lines = "\n".join(f"- **Step {i}**: open <Settings> & tap [help](https://acme.example/h?{i}&x=1)"
                          for i in range(120))
        adapter.send([Reply(conversation_id="telegram:5550001", channel="telegram", text=lines,
                            route={"chat_id": "5550001"}, meta=AnswerMeta(sources=sources))])
    finally:
        adapter.close()
    texts = [call.params["text"] for call in telegram.to("sendMessage")]
    # 13,000 characters of HTML, 8,000 once Telegram parsed the entities: it counts the latter.
    assert len(texts) == 2
    assert "\n".join(texts) == to_telegram_html(with_sources(lines, sources))
    assert all(TELEGRAM.measure(text) <= 4096 and text.count("<b>") == text.count("</b>") for text in texts)
    assert texts[0].startswith("• <b>Step 0</b>: open &lt;Settings&gt; &amp; tap "
                               '<a href="https://acme.example/h?0&amp;x=1">help</a>')
    assert texts[-1].endswith("Source: Help &amp; FAQ")


def test_set_webhook_registers_the_url_and_the_secret(tmp_path: Path, telegram: StubServer) -> None:
    env = {"PARLEY_DATA_DIR": str(tmp_path), "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
           "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET, "TELEGRAM_API_URL": telegram.url}
    result = CliRunner().invoke(main, ["--config", str(CONFIG), "telegram", "set-webhook",
                                       "https://bot.acme.example/telegram/webhook"], env=env)
    assert result.exit_code == 0, result.output
    [call] = telegram.to("setWebhook")
    assert call.params["url"] == "https://bot.acme.example/telegram/webhook"
    assert call.params["secret_token"] == SECRET
    assert json.loads(call.params["allowed_updates"]) == ["message", "callback_query"]  # button presses too
    assert "webhook set" in result.output


def test_the_stub_refuses_what_telegram_refuses(telegram: StubServer) -> None:
    # The stub holds the Bot API's rules, so a renderer regression fails here as it would live.
    adapter = TelegramAdapter(bot_token=BOT_TOKEN, secret_token=SECRET, api_url=telegram.url,
                              max_text_chars=2000)
    try:
        for bad, why in [("<b><i>x</b></i>", "Unmatched end tag"), ("<h1>x</h1>", "Unsupported start tag"),
                         ("a & b", "end of the entity"), ("<code><b>x</b></code>", "can't be inside"),
                         ("x" * 4097, "message is too long"), ("<b> </b>", "message text is empty")]:
            with pytest.raises(UpstreamError, match=f"(?i){why}"):
                adapter._send(Reply(conversation_id="telegram:1", channel="telegram", text="",
                                    route={"chat_id": "1"}), (bad, None))
    finally:
        adapter.close()


def test_an_llm_answer_in_any_markdown_reaches_the_customer(tmp_path: Path, telegram: StubServer,
                                                             openai_stub: OpenAIStub) -> None:
    # "***x***" used to become "<b><i>x</b></i>": Telegram refused it and the answer was dead-lettered.
    answer = ("***Important:*** see [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) [1].\n\n"
              "```bash\nparley chat < in & out\n```\n\n~~old~~ new\n\n> quoted\n\n"
              "| a | b |\n|---|---|\n| 1 | 2 |")
    openai_stub.queue(Outcome(text=answer))
    settings = llm_settings(tmp_path, openai_stub, environ={
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET, "TELEGRAM_API_URL": telegram.url})
    app = create_app(settings)
    try:
        assert post(app.test_client(), payload("text.json")).status_code == 200
        [call] = telegram.wait_for("sendMessage")
        sent = telegram.settle("sendMessage", at_least=1)
    finally:
        app.extensions["parley"].close()
    assert len(sent) == 1
    text = call.params["text"]
    assert text.startswith("<b><i>Important:</i></b> see "
                           '<a href="https://en.wikipedia.org/wiki/Mercury_(planet)">Mercury</a>')
    assert '<pre><code class="language-bash">parley chat &lt; in &amp; out</code></pre>' in text
    assert "<s>old</s> new" in text and "<blockquote>quoted</blockquote>" in text


def test_the_llm_markers_match_the_numbered_sources_shown(tmp_path: Path, telegram: StubServer,
                                                          openai_stub: OpenAIStub) -> None:
    # The model cites its passages [2] then [1]; the customer sees [1] and [2], listed under the
    # answer in that order, each linked to its article when the article has a url:.
    openai_stub.queue(Outcome(text="Choose *Forgot password?* [2]. The link lasts an hour [1]."))
    settings = llm_settings(tmp_path, openai_stub, environ={
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_SECRET_TOKEN": SECRET, "TELEGRAM_API_URL": telegram.url})
    app = create_app(settings)
    try:
        assert post(app.test_client(), payload("text.json")).status_code == 200
        [call] = telegram.wait_for("sendMessage")
    finally:
        app.extensions["parley"].close()
    passages = next(m["content"] for m in openai_stub.requests[0]["messages"]
                    if m["content"].startswith("Knowledge-base passages"))
    titles = dict(line.split("] ", 1) for line in passages.splitlines() if line.startswith("["))
    assert titles["[1"] == "How do I reset my password?"
    assert call.params["text"] == (
        "Choose <i>Forgot password?</i> [1]. The link lasts an hour [2].\n\nSources:\n"
        f"[1] {titles['[2']}\n"
        '[2] <a href="https://help.acme.example/account/reset-password">How do I reset my password?</a>')
