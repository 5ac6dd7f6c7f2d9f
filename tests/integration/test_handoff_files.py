"""Files in a handoff: a customer's photo reaches the reps' thread, a rep's file reaches the customer.

Every platform is a loopback stub speaking its documented file protocol (``tests/stubs/files.py``):
the Slack upload is slack_sdk's ``files_upload_v2``, the Telegram download and send are
python-telegram-bot's, the Twilio media fetch carries the account's credentials to Twilio and not
to its CDN. The payloads are the platforms' own, signed as each signs them.
"""

from __future__ import annotations

import io
import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from twilio.request_validator import RequestValidator

from parley.channels.web_json import to_sse
from parley.webhooks.app import create_app
from tests.integration.handoff_support import (
    BOT_TOKEN,
    HANDOFF_CHANNEL,
    PAYLOADS,
    Desk,
    SlackApi,
    handoff_settings,
    signed,
    wait_until,
)
from tests.stubs.files import SlackFiles, TelegramFiles, TwilioMedia
from tests.stubs.server import Call, StubServer, serving, telegram_api, twilio_api

ACCOUNT_SID = "ACfake0000000000000000000000000001"
AUTH_TOKEN = "12345678901234567890123456789012"
TELEGRAM_TOKEN = "123456789:AAHparleyTestTokenXXXXXXXXXXXXXXXXX"
TELEGRAM_SECRET = "parley-webhook-secret_0123456789"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 4
PROGRAM = b"MZ\x90\x00" + bytes(60)  # a Windows program's first bytes
TELEGRAM_PHOTO = "AgACAgQAAxkBAAMrZ0R1c2FtcGxlX2xhcmdl"  # the largest size in photo.json
LABEL = "/files-pri/T0123ACME-F0LABEL0001/download/return-label.png"
RECEIPT = "/files-pri/T0123ACME-F0RECEIPT01/download/receipt.png"
SEQ = itertools.count(1)


class Platforms:
    def __init__(self, slack: StubServer, telegram: StubServer, twilio: StubServer, *, api: SlackApi,
                 slack_files: SlackFiles, telegram_files: TelegramFiles, media: TwilioMedia) -> None:
        self.slack, self.telegram, self.twilio = slack, telegram, twilio
        self.api, self.slack_files, self.telegram_files, self.media = api, slack_files, telegram_files, media


@pytest.fixture
def platforms() -> Iterator[Platforms]:
    api = SlackApi()
    slack_files = SlackFiles(BOT_TOKEN, {LABEL: PNG, RECEIPT: PNG})
    telegram_files = TelegramFiles(TELEGRAM_TOKEN, {TELEGRAM_PHOTO: JPEG})
    media = TwilioMedia(ACCOUNT_SID, AUTH_TOKEN, cdn_host="")
    bot_api, sms_api = telegram_api(), twilio_api()
    with serving(lambda call: slack_files(call) or api(call)) as slack, \
            serving(lambda call: telegram_files(call) or bot_api(call)) as telegram, \
            serving(lambda call: media(call) or sms_api(call)) as twilio:
        media.cdn_host = twilio.url.removeprefix("http://").replace("127.0.0.1", "localhost")
        yield Platforms(slack, telegram, twilio, api=api, slack_files=slack_files,
                        telegram_files=telegram_files, media=media)


def make_app(tmp_path: Path, platforms: Platforms, database: dict[str, str], *, max_mb: float = 10,
             **environ: str) -> Flask:
    settings = handoff_settings(
        tmp_path, platforms.slack, **database, **environ, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=platforms.twilio.url, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
        TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET, TELEGRAM_API_URL=platforms.telegram.url)
    files = settings.handoff.files.model_copy(update={"max_mb": max_mb})
    return create_app(settings.model_copy(update={"handoff": settings.handoff.model_copy(update={"files": files})}))


@pytest.fixture
def app(tmp_path: Path, platforms: Platforms, database: dict[str, str]) -> Iterator[Flask]:
    app = make_app(tmp_path, platforms, database)
    yield app
    app.extensions["parley"].close()


def telegram(client: FlaskClient, payload: str, **message: object) -> None:
    update = json.loads((PAYLOADS / "telegram" / payload).read_text())
    n = next(SEQ)
    update["update_id"] += n
    update["message"].update(message_id=100 + n, **message)
    response = client.post("/telegram/webhook", data=json.dumps(update), content_type="application/json",
                           headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
    assert response.status_code == 200


def sms(client: FlaskClient, platforms: Platforms, payload: str, **fields: str) -> None:
    form = dict(parse_qsl((PAYLOADS / "twilio" / payload).read_text().strip(), keep_blank_values=True))
    sid = f"MM{next(SEQ):032d}"
    form.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, **fields)
    if "MediaUrl0" in form:  # Twilio's own host, as the stub serves it
        form["MediaUrl0"] = form["MediaUrl0"].replace("https://api.twilio.com", platforms.twilio.url)
    signature = RequestValidator(AUTH_TOKEN).compute_signature("http://localhost/twilio/messages", form)
    response = client.post("/twilio/messages", data=urlencode(form), content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200


def slack_event(client: FlaskClient, platforms: Platforms, payload: str, **event: object) -> None:
    body = json.loads((PAYLOADS / "slack" / payload).read_text().replace("https://files.slack.com", platforms.slack.url))
    body["event_id"] = f"Ev0FILE{next(SEQ):05d}"
    body["event"].update(event)
    data = json.dumps(body).encode()
    response = client.post("/slack/events", data=data, content_type="application/json", headers=signed(data))
    assert response.status_code == 200


def uploads(platforms: Platforms, count: int = 1) -> list[dict[str, object]]:
    found = wait_until(lambda: len(platforms.slack_files.uploaded) >= count and platforms.slack_files.uploaded)
    assert found, f"nothing was uploaded to the thread; Slack got {[c.endpoint for c in platforms.slack.calls]}"
    return found


def test_a_telegram_customers_photo_reaches_the_thread_and_the_reps_file_reaches_them(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    telegram(client, "text.json", text="I want to talk to a person")
    thread = desk.wait_for_thread()

    telegram(client, "photo.json", chat={"id": 5550001, "type": "private"})
    [upload] = uploads(platforms)
    assert (upload["channel_id"], upload["thread_ts"], upload["data"]) == (HANDOFF_CHANNEL, thread, JPEG)
    assert upload["filename"] == "file.jpg"  # Telegram names no photo; its content says JPEG
    desk.wait_in_thread(thread, "[sent 1 attachment(s)]")

    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread)
    sent = wait_until(lambda: platforms.telegram_files.sent)
    assert sent, "the rep's file never reached the customer"
    [(method, call)] = sent
    assert method == "sendPhoto" and call.params["chat_id"] == "5550001" and call.params["caption"] == "Ana"
    assert [(name, data) for name, _, data in call.files] == [("photo", PNG)]
    texts = [c.params["text"] for c in platforms.telegram.to("sendMessage")]
    assert any("Here is your return label" in text for text in texts)
    # Text first, then the file, and each once.
    assert [c.endpoint for c in platforms.telegram.calls if c.endpoint in ("sendMessage", "sendPhoto")][-2:] == [
        "sendMessage", "sendPhoto"]
    assert [c.headers.get("Authorization") for c in platforms.slack_files.downloads] == [f"Bearer {BOT_TOKEN}"]


def test_an_mms_photo_is_fetched_with_twilios_credentials_and_its_cdn_gets_none(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    platforms.media.hosted["/2010-04-01/Accounts/ACfake0000000000000000000000000001/Messages/"
                           "MM2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d/Media/ME0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"] = JPEG
    sms(client, platforms, "sms.txt", Body="I want to talk to a person")
    thread = desk.wait_for_thread()
    sms(client, platforms, "mms.txt")

    [upload] = uploads(platforms)
    assert (upload["thread_ts"], upload["data"], upload["filename"]) == (thread, JPEG, "media-1.jpg")
    assert [c.headers.get("Authorization", "")[:6] for c in platforms.media.media_calls] == ["Basic "]
    assert [c.headers.get("Authorization") for c in platforms.media.cdn_calls] == [None]

    # Twilio takes media only from a public URL of ours: without one, the text goes, and the thread
    # is told at once why the file did not.
    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread)
    desk.wait_in_thread(thread, "Not passed on: return-label.png (Twilio fetches media from Parley's public URL, "
                                "and none is set (server.public_url, PARLEY_PUBLIC_URL)).")
    bodies = [c.params["Body"] for c in platforms.twilio.to("Messages.json")]
    assert any("Here is your return label" in body for body in bodies)


def test_a_reps_file_reaches_an_sms_customer_as_media_twilio_fetches_from_parley(
        tmp_path: Path, platforms: Platforms, database: dict[str, str]) -> None:
    app = make_app(tmp_path, platforms, database, PARLEY_PUBLIC_URL="http://localhost")
    try:
        client = app.test_client()
        desk = Desk(client, platforms.api)
        sms(client, platforms, "sms.txt", Body="I want to talk to a person")
        thread = desk.wait_for_thread()
        slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread, text="")

        sent = wait_until(lambda: [c for c in platforms.twilio.to("Messages.json") if c.params.get("MediaUrl")])
        assert sent, "no media message was created"
        [media] = sent
        assert (media.params["To"], media.params["Body"]) == ("+12125550123", "Ana")
        url = media.params["MediaUrl"]
        assert url.startswith("http://localhost/twilio/media/")
        fetched = client.get(url.removeprefix("http://localhost"))  # as Twilio fetches it
        assert (fetched.status_code, fetched.mimetype, fetched.data) == (200, "image/png", PNG)
        assert fetched.headers["X-Content-Type-Options"] == "nosniff"
        assert client.get("/twilio/media/" + "x" * 43).status_code == 404
    finally:
        app.extensions["parley"].close()


@contextmanager
def slack_customer_with_a_rep(tmp_path: Path, platforms: Platforms, database: dict[str, str], *,
                              max_mb: float) -> Iterator[tuple[FlaskClient, Desk, str]]:
    """An app whose files may be ``max_mb``, and a Slack customer whose thread is open."""
    app = make_app(tmp_path, platforms, database, max_mb=max_mb)
    try:
        client = app.test_client()
        desk = Desk(client, platforms.api)
        slack_event(client, platforms, "message_im.json", text="I want to talk to a person")
        yield client, desk, desk.wait_for_thread()
    finally:
        app.extensions["parley"].close()


def test_a_file_over_the_limit_or_not_what_it_claims_is_not_passed_on_and_the_thread_says_why(
        tmp_path: Path, platforms: Platforms, database: dict[str, str]) -> None:
    with slack_customer_with_a_rep(tmp_path, platforms, database, max_mb=0.04) as (client, desk, thread):
        slack_event(client, platforms, "file_share.json")  # Slack says 48,213 bytes: never downloaded
        desk.wait_in_thread(thread, "Not passed on: receipt.png (over the 0.04 MB limit).")
        assert not platforms.slack_files.downloads

        telegram(client, "text.json", text="I want to talk to a person")
        telegram_thread = desk.wait_for_thread(2)
        platforms.slack_files.hosted[LABEL] = PROGRAM  # "image/png", says Slack; its bytes say otherwise
        slack_event(client, platforms, "handoff_file_share.json", thread_ts=telegram_thread)
        desk.wait_in_thread(telegram_thread, "Not passed on: return-label.png (its content is "
                                             "application/vnd.microsoft.portable-executable, which is not passed on).")
        assert not platforms.telegram_files.sent
        assert len(platforms.slack_files.downloads) == 1


def test_a_customers_file_outside_a_handoff_gets_the_text_only_answer_in_their_language(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    telegram(client, "photo.json")  # language_code "es"
    sent = wait_until(lambda: platforms.telegram.to("sendMessage"))
    assert sent and "solo puedo leer texto" in sent[0].params["text"].lower()
    assert not platforms.telegram_files.downloads and not platforms.slack_files.uploaded


def test_a_slack_customer_gets_the_reps_file_in_their_dm(app: Flask, client: FlaskClient,
                                                         platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    slack_event(client, platforms, "message_im.json", text="I want to talk to a person")
    thread = desk.wait_for_thread()
    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread, text="")

    [upload] = uploads(platforms)
    assert (upload["channel_id"], upload["thread_ts"], upload["comment"]) == ("D0CUSTOMER1", None, "Ana")
    assert (upload["filename"], upload["data"]) == ("return-label.png", PNG)
    # A file alone: no empty message before it.
    dm = [params for _, params in platforms.api.posted if params.get("channel") == "D0CUSTOMER1"]
    assert not any(params.get("text") in ("", "Ana:", "*Ana:*") for params in dm)


def test_a_file_whose_send_failed_is_sent_once_on_the_retry_and_the_text_is_not_repeated(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    telegram(client, "text.json", text="I want to talk to a person")
    thread = desk.wait_for_thread()
    platforms.telegram_files.failures = 1
    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread)

    sent = wait_until(lambda: platforms.telegram_files.sent, timeout=20)
    assert sent and [method for method, _ in platforms.telegram_files.sent] == ["sendPhoto"]
    attempts = [c for c in platforms.telegram.calls if c.endpoint == "sendPhoto"]
    assert len(attempts) == 2  # the failed one, then the one that went out
    texts = [c.params["text"] for c in platforms.telegram.to("sendMessage")]
    assert sum("Here is your return label" in text for text in texts) == 1


def test_a_widget_customer_sees_the_reps_file_live_and_in_the_history_by_one_address(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    first = client.post("/widget/api/messages", json={"text": "I want to talk to a person"}).get_json()
    conversation, secret = first["conversation_id"], {"X-Parley-Secret": first["secret"]}
    thread = desk.wait_for_thread()
    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread)

    def shown() -> list[dict]:
        return client.get(f"/widget/api/conversations/{conversation}", headers=secret).get_json()["messages"]
    assert wait_until(lambda: any(m["files"] for m in shown())), "the file never reached the widget"
    [text] = [m for m in shown() if m["text"] == "Here is your return label"]
    [photo] = [m for m in shown() if m["files"]]
    assert (text["author"], photo["author"], photo["text"]) == ("Ana", "Ana", "")
    [file] = photo["files"]
    assert (file["name"], file["type"]) == ("return-label.png", "image/png")
    fetched = client.get(file["url"])  # an <img> asks without the conversation's secret: the address is the key
    assert (fetched.status_code, fetched.mimetype, fetched.data) == (200, "image/png", PNG)
    assert client.get(file["url"][:-4] + "AAAA").status_code == 404

    # Live, the browser got the same message: same id, same address (no second copy after a re-sync).
    widget = app.extensions["parley"].adapters["widget"]
    live = [json.loads(line.removeprefix("data: ")) for event in widget.mailbox.after(conversation, "0", 0.0)
            for line in to_sse(event, 0.0, widget.keys.file_token).splitlines() if line.startswith("data: ")]
    [(live_id, live_files)] = [(p["message"]["id"], p["message"]["files"]) for p in live
                               if p["type"] == "message" and p["message"]["files"]]
    assert (live_id, live_files) == (photo["id"], photo["files"])
    assert not [text for text in desk.thread(thread) if "Not passed on" in text]

    # A file refused (its bytes are a program) never showed live, and the history shows none of it.
    platforms.slack_files.hosted[LABEL] = PROGRAM
    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread, text="")
    desk.wait_in_thread(thread, "Not passed on: return-label.png")
    assert [m["id"] for m in shown() if m["files"]] == [photo["id"]]
    assert "" not in [m["text"] for m in shown() if not m["files"]]


def test_a_file_slack_will_not_hand_over_or_keeps_elsewhere_is_named_and_the_text_still_goes(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    slack_event(client, platforms, "message_im.json", text="I want to talk to a person")
    thread = desk.wait_for_thread()
    platforms.slack_files.hosted.pop(RECEIPT)  # deleted in Slack before Parley fetched it
    slack_event(client, platforms, "file_share.json", text="my receipt")
    desk.wait_in_thread(thread, "Not passed on: receipt.png (Slack would not hand it over (HTTP 404)).")
    desk.wait_in_thread(thread, "*Customer:* my receipt")

    elsewhere = json.loads((PAYLOADS / "slack" / "file_share.json").read_text())["event"]["files"]
    elsewhere[0]["url_private_download"] = platforms.slack.url.replace("127.0.0.1", "localhost") + RECEIPT
    slack_event(client, platforms, "file_share.json", files=elsewhere)
    desk.wait_in_thread(thread, "Not passed on: receipt.png (Slack named a file on a host Parley does not "
                                "fetch from (localhost)).")
    assert len(platforms.slack_files.downloads) == 1  # the deleted one; nothing asked of another host
    customer = [params.get("text", "") for _, params in platforms.api.posted if params.get("channel") == "D0CUSTOMER1"]
    assert not any("went wrong" in text.lower() for text in customer)  # no apology: nothing failed them


def test_a_file_bigger_than_slack_said_is_cut_off_while_downloading(
        tmp_path: Path, platforms: Platforms, database: dict[str, str]) -> None:
    with slack_customer_with_a_rep(tmp_path, platforms, database, max_mb=0.05) as (client, desk, thread):
        platforms.slack_files.hosted[RECEIPT] = PNG + bytes(80_000)  # the event says 48,213 bytes
        slack_event(client, platforms, "file_share.json")
        desk.wait_in_thread(thread, "Not passed on: receipt.png (over the 0.05 MB limit).")
        assert not platforms.slack_files.uploaded


def test_a_notice_of_a_refused_file_that_fails_to_post_is_posted_on_the_retry_once(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    sms(client, platforms, "sms.txt", Body="I want to talk to a person")
    thread = desk.wait_for_thread()
    failing = {"left": 1}

    def flaky(call: Call) -> tuple[int, dict[str, object]] | None:
        if call.endpoint == "chat.postMessage" and "Not passed on" in str(call.params.get("text")) and failing["left"]:
            failing["left"] -= 1
            return 500, {"ok": False, "error": "internal_error"}
        return None
    platforms.api.fault = flaky
    slack_event(client, platforms, "handoff_file_share.json", thread_ts=thread)
    notices = wait_until(lambda: [t for t in desk.thread(thread) if "Not passed on" in t], timeout=20)
    assert notices and not failing["left"]
    time.sleep(1.0)
    assert len([t for t in desk.thread(thread) if "Not passed on" in t]) == 1
    bodies = [c.params["Body"] for c in platforms.twilio.to("Messages.json")]
    assert sum("Here is your return label" in body for body in bodies) == 1


def widget_start(client: FlaskClient, text: str) -> tuple[str, dict[str, str]]:
    first = client.post("/widget/api/messages", json={"text": text}).get_json()
    return first["conversation_id"], {"X-Parley-Secret": first["secret"]}


def widget_upload(client: FlaskClient, conversation: str, secret: dict[str, str], name: str, data: bytes,
                  content_type: str, **headers: str):  # noqa: ANN201 - Flask's test response
    return client.post(f"/widget/api/files?conversation_id={conversation}", headers={**secret, **headers},
                       data={"file": (io.BytesIO(data), name, content_type)}, content_type="multipart/form-data")


def test_a_widget_customers_photo_reaches_the_thread(app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    conversation, secret = widget_start(client, "I want to talk to a person")
    thread = desk.wait_for_thread()

    uploaded = widget_upload(client, conversation, secret, "screenshot.png", PNG, "image/png")
    assert uploaded.status_code == 201
    kept = uploaded.get_json()
    assert (kept["name"], kept["type"], kept["size"]) == ("screenshot.png", "image/png", len(PNG))
    sent = client.post("/widget/api/messages", headers=secret,
                       json={"conversation_id": conversation, "text": "", "files": [kept["file"]]})
    assert sent.status_code == 200 and sent.get_json()["with_person"] is True

    [upload] = uploads(platforms)
    assert (upload["thread_ts"], upload["filename"], upload["data"]) == (thread, "screenshot.png", PNG)
    history = client.get(f"/widget/api/conversations/{conversation}", headers=secret).get_json()["messages"]
    assert [m["files"] for m in history if m["direction"] == "in" and m["files"]] == [
        [{"name": "screenshot.png", "type": "image/png"}]]  # its own browser shows the name again


def test_a_widget_upload_is_checked_at_once_in_the_customers_language(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    desk = Desk(client, platforms.api)
    conversation, secret = widget_start(client, "quiero hablar con una persona")
    desk.wait_for_thread()
    refused = widget_upload(client, conversation, secret, "photo.png", PROGRAM, "image/png", **{"Accept-Language": "es"})
    assert refused.status_code == 415
    assert refused.get_json() == {"error": "Ese tipo de archivo no se puede enviar aquí"}
    big = widget_upload(client, conversation, secret, "big.png", PNG + bytes(11_000_000), "image/png",
                        **{"Accept-Language": "es"})
    assert (big.status_code, big.get_json()) == (413, {"error": "Ese archivo es demasiado grande (máximo 10 MB)"})
    just_over = widget_upload(client, conversation, secret, "big.png", PNG + bytes(10_000_000), "image/png")
    assert (just_over.status_code, just_over.get_json()) == (413, {"error": "That file is too big (max 10 MB)"})
    assert widget_upload(client, conversation, {"X-Parley-Secret": "wrong"}, "a.png", PNG, "image/png").status_code == 401

    other, other_secret = widget_start(client, "I want to talk to a person")
    desk.wait_for_thread(2)
    theirs = widget_upload(client, other, other_secret, "theirs.png", PNG, "image/png").get_json()["file"]
    stolen = client.post("/widget/api/messages", headers=secret,
                         json={"conversation_id": conversation, "text": "", "files": [theirs]})
    assert stolen.status_code == 400  # a message carries only its own conversation's uploads
    assert client.get(f"/widget/api/files/{theirs}").status_code == 404  # and nobody downloads one
    assert not platforms.slack_files.uploaded


def test_a_widget_file_outside_a_handoff_is_refused_with_the_text_only_answer(
        app: Flask, client: FlaskClient, platforms: Platforms) -> None:
    conversation, secret = widget_start(client, "hello")
    refused = widget_upload(client, conversation, secret, "a.png", PNG, "image/png")
    assert (refused.status_code, refused.get_json()) == (
        409, {"error": "Sorry, I can only read text for now. Could you type your question?"})
