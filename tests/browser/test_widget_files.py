"""A rep's file in the widget: the product with a Slack desk (a loopback Slack that keeps files),
a customer on the widget who asks for a person, and a rep who attaches a photo and a PDF in the
thread. The customer sees the photo and a link to the PDF, live and after a reload."""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Site, running_site
from tests.browser.test_widget_in_browser import ask, open_chat
from tests.integration.handoff_support import (BOT_TOKEN, HANDOFF_CHANNEL, PAYLOADS, SIGNING_SECRET, SlackApi,
                                               signed, wait_until)
from tests.stubs.files import SlackFiles
from tests.stubs.server import StubServer, serving


def png(width: int, height: int) -> bytes:
    """A real PNG of one colour, so the browser has a picture to decode."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x25\x63\xeb" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


LABEL = png(120, 80)
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
FILES = {"/files-pri/T0123ACME-F0LABEL0001/download/return-label.png": LABEL,
         "/files-pri/T0123ACME-F0INVOICE1/download/invoice.pdf": PDF}


@pytest.fixture(scope="module")
def slack() -> Iterator[tuple[StubServer, SlackApi, SlackFiles]]:
    api, files = SlackApi(), SlackFiles(BOT_TOKEN, FILES)
    with serving(lambda call: files(call) or api(call)) as server:
        yield server, api, files


@pytest.fixture(scope="module")
def desk_site(tmp_path_factory: pytest.TempPathFactory, slack: tuple[StubServer, SlackApi, SlackFiles]) -> Iterator[Site]:
    server, _, _ = slack
    with running_site(tmp_path_factory.mktemp("browser-desk"), SLACK_BOT_TOKEN=BOT_TOKEN,
                      SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=server.url + "/api/",
                      SLACK_HANDOFF_CHANNEL=HANDOFF_CHANNEL) as site:
        yield site


def new_thread(api: SlackApi, count: int) -> str:
    """The ts of the handoff channel's ``count``-th thread, once Slack has it."""
    headers = wait_until(lambda: [ts for ts, p in api.posted if p.get("channel") == HANDOFF_CHANNEL
                                  and "blocks" in p][count - 1:] or None, 20)
    assert headers, "no thread opened in the handoff channel"
    return headers[0]


def rep_attaches(site_url: str, slack_url: str, thread: str) -> None:
    """The rep's thread reply with a photo and a PDF, as Slack sends it (signed)."""
    body = json.loads((PAYLOADS / "slack" / "handoff_file_share.json").read_text()
                      .replace("https://files.slack.com", slack_url))
    [photo] = body["event"]["files"]
    invoice = {**photo, "id": "F0INVOICE1", "name": "invoice.pdf", "title": "invoice.pdf",
               "mimetype": "application/pdf", "filetype": "pdf", "size": len(PDF),
               "url_private_download": f"{slack_url}/files-pri/T0123ACME-F0INVOICE1/download/invoice.pdf"}
    body["event"].update(thread_ts=thread, files=[photo, invoice], text="Your label and invoice")
    body["event_id"] = f"Ev0BROWSERF{int(time.time() * 1000) % 100000:05d}"
    data = json.dumps(body).encode()
    response = requests.post(f"{site_url}/slack/events", data=data, timeout=10,
                             headers={"Content-Type": "application/json", **signed(data)})
    assert response.status_code == 200


def test_a_reps_photo_and_pdf_show_in_the_widget_live_and_after_a_reload(
        browser: Browser, desk_site: Site, slack: tuple[StubServer, SlackApi, SlackFiles], output_dir: Path) -> None:
    server, api, _ = slack
    page: Page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(15_000)
    try:
        page.goto(desk_site.host_url)
        open_chat(page)
        ask(page, "I want to talk to a person")
        thread = new_thread(api, 1)
        time.sleep(0.5)  # the thread is known to Parley a moment after Slack answered its post
        rep_attaches(desk_site.server_url, server.url, thread)

        rep = page.locator(".msg.agent")
        expect(rep.locator(".bubble").first).to_have_text("Your label and invoice")
        photo = rep.locator("a.file img")
        expect(photo).to_have_attribute("alt", "return-label.png")
        assert wait_until(lambda: photo.evaluate("img => img.complete && img.naturalWidth") == 120, 10), \
            "the photo did not load in the browser"
        expect(rep.locator("a.file", has_text="invoice.pdf")).to_have_attribute("download", "invoice.pdf")
        page.screenshot(path=output_dir / "widget-rep-files.png")

        page.reload()
        open_chat(page)
        expect(page.locator(".msg.agent a.file img")).to_have_count(1)
        expect(page.locator(".msg.agent a.file", has_text="invoice.pdf")).to_have_count(1)
    finally:
        page.close()


def test_a_customer_attaches_a_photo_in_the_widget_and_it_reaches_the_reps_thread(
        browser: Browser, desk_site: Site, slack: tuple[StubServer, SlackApi, SlackFiles], tmp_path: Path) -> None:
    _, api, files = slack
    photo = tmp_path / "broken-box.png"
    photo.write_bytes(png(64, 48))
    page: Page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(15_000)
    try:
        page.goto(desk_site.host_url)
        open_chat(page)
        threads = len([p for _, p in api.posted if p.get("channel") == HANDOFF_CHANNEL and "blocks" in p])
        ask(page, "I want to talk to a person")
        thread = new_thread(api, threads + 1)
        page.get_by_role("button", name="Attach a file").click()  # opens the system's picker...
        page.locator("input[type=file]").set_input_files(str(photo))  # ...which the test answers
        expect(page.locator(".msg.user .sent-file")).to_have_text("broken-box.png")
        sent = wait_until(lambda: [u for u in files.uploaded if u["thread_ts"] == thread], 20)
        assert sent and sent[0]["data"] == photo.read_bytes() and sent[0]["filename"] == "broken-box.png"
        expect(page.locator(".msg.user .failed")).to_have_count(0)
    finally:
        page.close()
