"""The widget as a customer meets it: embedded on another site, in headless Chromium, on the real server."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from pathlib import Path

import requests
from playwright.sync_api import Browser, BrowserContext, Locator, Page, Response, Route, expect
from playwright.sync_api._generated import EventContextManager

from parley.channels.web_secrets import ConversationKeys
from parley.core.envelope import Envelope
from parley.stores.sql import SqlConversationLog, open_database
from tests.browser.conftest import ADMIN_TOKEN, PER_BROWSER_LIMIT, Site
from tests.stubs.openai_stub import OpenAIStub, Outcome

PASSWORD_SOURCE = "Source: How do I reset my password?"


def open_chat(page: Page) -> None:
    page.get_by_role("button", name="Open chat").click()
    expect(page.get_by_role("dialog", name="Acme Support")).to_be_visible()


def ask(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Type your message")
    box.fill(text)
    box.press("Enter")


STORAGE_KEY = "parley:acme:conversation"


def saved(page: Page) -> dict[str, str] | None:
    """What the widget keeps in ``localStorage``: the conversation's id and its secret."""
    raw = page.evaluate(f"localStorage.getItem('{STORAGE_KEY}')")
    return json.loads(raw) if raw else None


def conversation_id(page: Page) -> str:
    kept = saved(page)
    assert kept is not None, "the widget saved no conversation"
    return kept["id"]


def bot_messages(page: Page) -> Locator:
    return page.locator(".msg.bot")


def test_question_answer_with_source_and_history_after_reload(page: Page, output_dir: Path) -> None:
    open_chat(page)
    expect(page.locator(".msg.bot").first).to_contain_text("Hi! I'm the Acme assistant")
    expect(page.locator(".quick button")).to_have_text(
        ["Track my order", "Start a return", "Reset my password", "Talk to a person"])
    expect(page.locator(".launcher")).to_have_css("background-color", "rgb(31, 111, 235)")  # theme.primary
    ask(page, "How do I reset my password?")
    answer = bot_messages(page).nth(1)
    expect(answer).to_contain_text("Forgot password")
    expect(answer.locator(".src")).to_have_text(PASSWORD_SOURCE)
    # The article's url:, as a link
    expect(answer.locator(".src a")).to_have_attribute("href", "https://help.acme.example/account/reset-password")
    page.screenshot(path=output_dir / "widget-desktop.png")

    page.reload()
    open_chat(page)
    expect(page.locator(".msg.user .bubble")).to_have_text(["How do I reset my password?"])
    expect(bot_messages(page).nth(1).locator(".src")).to_have_text(PASSWORD_SOURCE)


def test_a_reload_keeps_the_conversation_by_its_secret_which_no_url_carries(page: Page, site: Site) -> None:
    requests_seen: list[tuple[str, str | None]] = []
    page.on("request", lambda r: requests_seen.append((r.url, r.headers.get("x-parley-secret"))))
    open_chat(page)
    ask(page, "How do I reset my password?")
    expect(bot_messages(page).nth(1)).to_contain_text("Forgot password")
    kept = saved(page)
    assert kept is not None and kept["secret"]
    # The id alone (all a log line or a Slack button shows) opens nothing.
    history = f"{site.server_url}/widget/api/conversations/{kept['id']}"
    assert requests.get(history, timeout=10).status_code == 401

    requests_seen.clear()
    page.reload()
    with page.expect_request(lambda r: "/events?token=" in r.url):  # the live stream, by its pass
        open_chat(page)
    expect(page.locator(".msg.user .bubble")).to_have_text(["How do I reset my password?"])
    expect(bot_messages(page).nth(1)).to_contain_text("Forgot password")
    assert saved(page) == kept  # read back from localStorage, not a new conversation
    sent = {secret for url, secret in requests_seen if url.endswith(f"/conversations/{kept['id']}")}
    assert sent == {kept["secret"]}  # the history came by the secret, in a header
    assert not [url for url, _ in requests_seen if kept["secret"] in url]
    # The server's own output (gunicorn and Parley, INFO) holds neither the secret nor a stream pass.
    passes = {url.split("token=")[1].split("&")[0] for url, _ in requests_seen if "token=" in url}
    logged = site.log.read_text(encoding="utf-8")
    assert kept["id"] in logged  # the conversation was logged, by its id
    assert kept["secret"] not in logged and passes and not [p for p in passes if p in logged]
    ask(page, "how long does delivery take")
    expect(page.locator(".msg.user .bubble")).to_have_text(["How do I reset my password?", "how long does delivery take"])
    expect(bot_messages(page).nth(2)).to_be_visible()


def test_a_chat_saved_before_secrets_re_attaches_once_and_a_copied_id_opens_nothing(
        context: BrowserContext, browser: Browser, site: Site) -> None:
    # A chat as the widget opened them before secrets: "w" and the first message's UUID, kept bare.
    legacy_id = f"w{uuid.uuid4()}"
    log = SqlConversationLog(open_database(f"sqlite:///{site.database}"))
    log.record_inbound(Envelope(channel="widget", conversation_id=legacy_id, message_id=f"{legacy_id}:1",
                                sender=legacy_id, text="where is my parcel?"))
    log.database.dispose()
    customer = context.new_page()
    customer.goto(site.host_url)
    customer.evaluate(f"localStorage.setItem('{STORAGE_KEY}', '{legacy_id}')")
    customer.reload()
    open_chat(customer)
    expect(customer.locator(".msg.user .bubble")).to_have_text(["where is my parcel?"])
    kept = saved(customer)
    assert kept is not None and kept["id"] == legacy_id and kept["secret"]
    # Someone else holding the same bare id (from a log line, say) gets a fresh, empty chat.
    other = browser.new_context()
    thief = other.new_page()
    thief.goto(site.host_url)
    thief.evaluate(f"localStorage.setItem('{STORAGE_KEY}', '{legacy_id}')")
    thief.reload()
    open_chat(thief)
    expect(thief.locator(".msg.bot").first).to_contain_text("Hi! I'm the Acme assistant")
    expect(thief.locator(".msg.user")).to_have_count(0)
    assert saved(thief) is None
    other.close()


def test_an_expired_stream_pass_is_renewed_and_live_messages_still_arrive(context: BrowserContext, site: Site) -> None:
    # As if the pass had been issued an hour ago: signed by the server's own key, and expired.
    assert requests.post(f"{site.server_url}/widget/api/conversations", timeout=10).status_code == 201
    keys = ConversationKeys((site.database.parent / "widget.key").read_bytes())  # drawn at first use

    def issued_an_hour_ago(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["stream_token"] = keys.stream_token(body["conversation_id"], now=time.time() - 3600)
        route.fulfill(response=response, json=body)

    page = context.new_page()
    page.route("**/widget/api/conversations", issued_an_hour_ago)
    page.goto(site.host_url)
    open_chat(page)
    with page.expect_response(lambda r: "/events?token=" in r.url and r.status == 401):
        ask(page, "where is my package")
    with page.expect_response(lambda r: "/events?token=" in r.url and r.status == 200):
        expect(bot_messages(page).nth(1)).to_be_visible()
    response = requests.post(f"{site.server_url}/admin/conversations/{conversation_id(page)}/messages",
                             json={"text": "Dana here, on it.", "author": "Dana"},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 201
    expect(page.locator(".msg.agent .bubble")).to_have_text("Dana here, on it.")


def test_a_support_reps_message_appears_without_reload(page: Page, site: Site, output_dir: Path) -> None:
    open_chat(page)
    # The live stream opens once the conversation exists; the rep writes after that.
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/events")):
        ask(page, "where is my package")
        expect(bot_messages(page).nth(1)).to_be_visible()
    response = requests.post(f"{site.server_url}/admin/conversations/{conversation_id(page)}/messages",
                             json={"text": "Hi, this is **Dana** from support. Let me check that for you.",
                                   "author": "Dana"},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 201
    rep = page.locator(".msg.agent")
    expect(rep.locator(".meta")).to_have_text("Dana (support)")
    expect(rep.locator(".bubble")).to_have_text("Hi, this is Dana from support. Let me check that for you.")
    expect(rep.locator(".bubble strong")).to_have_text("Dana")
    expect(rep.locator(".fb")).to_have_count(0)  # people are not rated like the bot
    page.screenshot(path=output_dir / "widget-rep-message.png")


def test_rating_an_answer_is_stored(page: Page, site: Site) -> None:
    open_chat(page)
    ask(page, "How do I reset my password?")
    answer = bot_messages(page).nth(1)
    answer.get_by_role("button", name="Not helpful").click()
    expect(answer.locator(".fb")).to_contain_text("Thanks for your feedback")
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    with sqlite3.connect(site.database) as db:
        rows = db.execute("SELECT f.score, m.text FROM feedback f JOIN message m ON m.public_id = f.message_id "
                          "WHERE f.conversation_id = ?", (conversation_id(page),)).fetchall()
    assert len(rows) == 1
    score, text = rows[0]
    assert score == -1
    assert "Forgot password" in text


def test_html_in_an_answer_is_shown_as_text_never_run(page: Page, output_dir: Path) -> None:
    open_chat(page)
    ask(page, "can you gift wrap my order")
    bubble = bot_messages(page).nth(1).locator(".bubble")
    expect(bubble).to_contain_text('<img src=x onerror="window.__xss = 1">')
    expect(bubble).to_contain_text("<script>window.__xss = 2</script>")
    expect(bubble).to_contain_text("[our gift guide](javascript:window.__xss=3)")
    expect(bubble.locator("img, script")).to_have_count(0)
    link = bubble.get_by_role("link", name="the wrapping page")
    expect(link).to_have_attribute("href", "https://acme.example/gifts")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    assert page.evaluate("window.__xss") is None
    page.screenshot(path=output_dir / "widget-html-as-text.png")


def test_a_message_over_the_limit_is_refused_with_a_clear_message(page: Page) -> None:
    open_chat(page)
    box = page.get_by_role("textbox", name="Type your message")
    expect(box).to_have_attribute("maxlength", "2000")
    box.evaluate("(el, text) => { el.value = text; }", "x" * 2001)  # set by a script, past maxlength
    box.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("Your message is too long (max 2000 characters)")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".msg.user")).to_have_count(0)


def test_keyboard_only(page: Page) -> None:
    page.keyboard.press("Tab")
    launcher = page.get_by_role("button", name="Open chat")
    expect(launcher).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("textbox", name="Type your message")).to_be_focused()
    page.keyboard.type("how long does delivery take")
    page.keyboard.press("Enter")
    expect(page.locator(".msg.user .bubble")).to_have_text(["how long does delivery take"])
    expect(bot_messages(page).nth(1)).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")


def answered(page: Page) -> EventContextManager[Response]:
    return page.expect_response(lambda r: r.url.endswith("/widget/api/messages") and r.request.method == "POST")


def test_a_browser_sending_too_fast_is_asked_to_wait(page: Page, site: Site) -> None:
    open_chat(page)
    # The browser's own limit counts every message of its conversation, the first one too.
    for number in range(PER_BROWSER_LIMIT):
        with answered(page) as response:
            ask(page, f"hello number {number}")
        assert response.value.status == 200
    with answered(page) as response:
        ask(page, "one more, quickly")
    assert response.value.status == 429
    expect(page.get_by_role("alert")).to_have_text("You're sending messages too fast, please wait a moment")
    expect(page.locator(".msg.user").last).to_contain_text("Not sent")
    expect(page.locator(".send")).to_be_disabled()
    with sqlite3.connect(site.database) as db:
        stored = db.execute("SELECT count(*) FROM message WHERE conversation_id = ? AND direction = 'in'",
                            (conversation_id(page),)).fetchone()[0]
    assert stored == PER_BROWSER_LIMIT


def test_mobile_layout_fills_the_screen(page: Page, output_dir: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_chat(page)
    ask(page, "How do I reset my password?")
    expect(bot_messages(page).nth(1).locator(".src")).to_have_text(PASSWORD_SOURCE)
    box = page.get_by_role("dialog").bounding_box()
    assert box is not None
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 844)
    page.screenshot(path=output_dir / "widget-mobile.png")


FETCH_FROM_PAGE = """async (url) => {
  try {
    const res = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                  body: JSON.stringify({text: 'hello from this site'})});
    return res.status;
  } catch (err) { return String(err); }
}"""


def test_only_allowed_sites_may_talk_to_the_server(context: BrowserContext, site: Site) -> None:
    messages = f"{site.public_url}/widget/api/messages"
    allowed = context.new_page()
    allowed.goto(site.host_url)
    assert allowed.evaluate(FETCH_FROM_PAGE, messages) == 200
    # The same page served from "localhost" is another origin, absent from PARLEY_WIDGET_ORIGINS.
    other = context.new_page()
    other.goto(site.host_url.replace("127.0.0.1", "localhost"))
    assert other.evaluate(FETCH_FROM_PAGE, messages) == "TypeError: Failed to fetch"
    refused = requests.post(messages, json={"text": "hello"}, timeout=10,
                            headers={"Origin": site.host_url.replace("127.0.0.1", "localhost").rsplit("/", 1)[0]})
    assert (refused.status_code, refused.json()) == (403, {"error": "origin not allowed"})


def test_after_a_network_loss_the_widget_reconnects_and_catches_up(page: Page, site: Site) -> None:
    open_chat(page)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/events")):
        ask(page, "where is my package")
        expect(bot_messages(page).nth(1)).to_be_visible()
    site.cable.cut()
    response = requests.post(f"{site.server_url}/admin/conversations/{conversation_id(page)}/messages",
                             json={"text": "Sent while you were offline.", "author": "Sam"},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 201
    deadline = time.monotonic() + 10
    while site.cable.refused == 0 and time.monotonic() < deadline:  # it tried to reconnect, and could not
        page.wait_for_timeout(100)
    assert site.cable.refused > 0
    assert page.locator(".msg.agent").count() == 0
    site.cable.restore()
    expect(page.locator(".msg.agent .bubble")).to_have_text("Sent while you were offline.", timeout=20_000)


STREAMED = ("https://acme.example/account/security/password-reset-request-form-for-customers is where "
            "you reset it: enter your email and follow the link we send [1].")


def test_an_llm_answer_streams_in_before_it_is_finished(context: BrowserContext, llm_site: tuple[Site, OpenAIStub]) -> None:
    site, stub = llm_site
    # The model pauses after its first (long) word: what came so far must already show.
    stub.queue(Outcome(text=STREAMED, stall=2.0))
    page = context.new_page()
    page.goto(site.host_url)
    open_chat(page)
    ask(page, "How do I reset my password?")
    draft = page.locator(".msg.bot[aria-busy=true] .bubble.streaming")
    expect(draft).to_contain_text("https://acme.example/")
    shown = draft.inner_text()
    assert STREAMED.startswith(shown) and len(shown) < len(STREAMED)
    answer = bot_messages(page).nth(1)
    expect(answer.locator(".bubble")).to_have_text(STREAMED)
    # The answer cites "[1]": its source is listed with that number, linked to the article's url:.
    expect(answer.locator(".src")).to_have_text("[1] How do I reset my password?")
    expect(answer.locator(".src a")).to_have_attribute("href", "https://help.acme.example/account/reset-password")
    expect(draft).to_have_count(0)
    expect(bot_messages(page)).to_have_count(2)  # the draft became the answer, not a second bubble
