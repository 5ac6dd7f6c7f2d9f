"""The widget's JSON API through the app, on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid

from flask.testing import FlaskClient

from parley.channels.web_secrets import REFUSED


def ask(client: FlaskClient, text: str, secret: str | None = None, **body: object):
    return client.post("/widget/api/messages", json={"text": text, **body},
                       headers={"X-Parley-Secret": secret} if secret else {})


def history_of(client: FlaskClient, answer: dict) -> dict:
    return client.get(f"/widget/api/conversations/{answer['conversation_id']}",
                      headers={"X-Parley-Secret": answer["secret"]}).get_json()


def test_first_answer_names_its_source_and_starts_a_conversation(client: FlaskClient) -> None:
    response = ask(client, "How do I reset my password?")
    assert response.status_code == 200
    body = response.get_json()
    [reply] = body["replies"]
    assert "Forgot password" in reply["text"]
    assert reply["sources"] == [{"id": "reset-password", "title": "How do I reset my password?",
                                 "url": "https://help.acme.example/account/reset-password"}]
    assert body["conversation_id"]


def test_conversation_continues_and_history_is_served_in_order(client: FlaskClient) -> None:
    first = ask(client, "How do I reset my password?").get_json()
    conversation_id = first["conversation_id"]
    second = ask(client, "how long does delivery take", first["secret"], conversation_id=conversation_id).get_json()
    assert second["conversation_id"] == conversation_id
    history = history_of(client, first)
    assert [(m["direction"], m["text"][:20]) for m in history["messages"]] == [
        ("in", "How do I reset my pa"),
        ("out", first["replies"][0]["text"][:20]),
        ("in", "how long does delive"),
        ("out", second["replies"][0]["text"][:20]),
    ]
    assert history["messages"][1]["sources"][0]["id"] == "reset-password"


def test_a_retried_message_is_stored_and_answered_once(client: FlaskClient) -> None:
    message_id = uuid.uuid4().hex
    first = ask(client, "where is my package", client_message_id=message_id).get_json()
    again = ask(client, "where is my package", client_message_id=message_id).get_json()
    assert again == first
    history = history_of(client, first)
    assert len(history["messages"]) == 2


def test_emoji_and_control_characters(client: FlaskClient) -> None:
    response = ask(client, "hello\x00\x07 👋")
    assert response.status_code == 200
    history = history_of(client, response.get_json())
    assert history["messages"][0]["text"] == "hello 👋"


def test_bad_input_gets_a_clear_4xx(client: FlaskClient) -> None:
    cases = [
        (client.post("/widget/api/messages", json={"text": "   "}), 400, "message text is empty"),
        (client.post("/widget/api/messages", json={"text": "x" * 10_000}), 413, "message too long (max 2000 characters)"),
        (client.post("/widget/api/messages", data="{not json", content_type="application/json"), 400,
         "body must be a JSON object"),
        (client.post("/widget/api/messages", data="text=hi"), 415, "send JSON (Content-Type: application/json)"),
        (client.post("/widget/api/messages", json={"text": 42}), 400, "message text must be a string"),
        (ask(client, "hi", conversation_id="w" + "0" * 31), 401, REFUSED),
        (ask(client, "hi", conversation_id="../../etc"), 400,
         "conversation_id must be 8-64 letters, digits, '-' or '_'"),
        (client.post("/widget/api/messages", data="x" * 70_000, content_type="application/json"), 413,
         "request entity too large"),
    ]
    for response, status, error in cases:
        assert (response.status_code, response.get_json()) == (status, {"error": error})


def test_nothing_is_stored_for_refused_messages(client: FlaskClient, app) -> None:
    ask(client, "   ")
    ask(client, "x" * 10_000)
    assert app.extensions["parley"].inbox.depth() == 0


def test_a_conversation_with_nothing_said_yet_has_an_empty_history(client: FlaskClient) -> None:
    started = client.post("/widget/api/conversations").get_json()  # issued, but nothing said yet
    response = client.get(f"/widget/api/conversations/{started['conversation_id']}",
                          headers={"X-Parley-Secret": started["secret"]})
    assert (response.status_code, response.get_json()) == (
        200, {"conversation_id": started["conversation_id"], "messages": []})


def test_another_sites_browser_is_refused(client: FlaskClient) -> None:
    response = client.post("/widget/api/messages", json={"text": "hi"}, headers={"Origin": "https://evil.example"})
    assert (response.status_code, response.get_json()) == (403, {"error": "origin not allowed"})


def test_widget_page_script_and_config_are_served(client: FlaskClient) -> None:
    page = client.get("/widget")
    assert page.status_code == 200
    assert b"/widget/widget.js" in page.data
    script = client.get("/widget/widget.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    config = client.get("/widget/api/config").get_json()
    assert config["title"] == "Acme Support"
    assert config["max_length"] == 2000


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["knowledge_articles"] >= 40


def test_unknown_paths_are_json_404(client: FlaskClient) -> None:
    response = client.get("/wp-admin")
    assert (response.status_code, response.get_json()) == (404, {"error": "not found"})


def poison_the_log(client: FlaskClient, text: str) -> None:
    """The database refuses to store one text, on every attempt: a message no retry can save."""
    database = client.application.extensions["parley"].log.database
    with database.begin() as connection:
        if database.dialect.name == "sqlite":
            connection.exec_driver_sql(f"CREATE TRIGGER poison BEFORE INSERT ON message WHEN NEW.text = '{text}' "
                                       "BEGIN SELECT RAISE(ABORT, 'poisoned'); END")
        else:
            connection.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.text = '{text}' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql")
            connection.exec_driver_sql("CREATE TRIGGER poison BEFORE INSERT ON message FOR EACH ROW "
                                       "EXECUTE FUNCTION poison()")


def test_the_apology_for_a_failed_message_is_in_the_conversations_language(client: FlaskClient) -> None:
    poison_the_log(client, "veneno por favor")
    first = ask(client, "hola", language="es").get_json()
    assert first["replies"][0]["text"].startswith("¡Hola!")
    failed = ask(client, "veneno por favor", first["secret"], conversation_id=first["conversation_id"])
    [reply] = failed.get_json()["replies"]
    assert reply["text"].startswith("Lo siento, algo falló por nuestra parte con tu último mensaje.")


def test_a_message_that_fails_every_attempt_is_answered_with_an_apology_at_once(client: FlaskClient) -> None:
    poison_the_log(client, "poison please")
    first = ask(client, "How do I reset my password?").get_json()

    # Five attempts (about 1.5 s of back-off), then the dead letter: the waiting request hears of
    # it then, rather than after its 10 s timeout, and so does every open panel.
    failed = ask(client, "poison please", first["secret"], conversation_id=first["conversation_id"])

    assert failed.status_code == 200
    [reply] = failed.get_json()["replies"]
    assert reply["text"].startswith("Sorry, something went wrong on our side with your last message.")
    inbox = client.application.extensions["parley"].inbox
    assert [letter.delivery.envelope.text for letter in inbox.dead_letters] == ["poison please"]
    again = ask(client, "How long does delivery take?", first["secret"], conversation_id=first["conversation_id"])
    assert again.get_json()["replies"][0]["text"] != reply["text"], "the conversation goes on"
