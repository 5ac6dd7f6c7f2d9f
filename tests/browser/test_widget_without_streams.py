"""A widget refused a live stream (503: the process's streams are all taken) still shows new messages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import ADMIN_TOKEN, Site, running_site
from tests.browser.test_widget_in_browser import ask, bot_messages, conversation_id, open_chat


@pytest.fixture(scope="module")
def full_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    # No stream slots at all: every /events request is refused, as on a process whose slots are taken.
    with running_site(tmp_path_factory.mktemp("browser-streams"), PARLEY_WIDGET_MAX_STREAMS="0") as running:
        yield running


def test_a_reps_message_arrives_through_the_history_when_streams_are_refused(
        context: BrowserContext, full_site: Site) -> None:
    page: Page = context.new_page()
    page.goto(full_site.host_url)
    open_chat(page)
    with page.expect_response(lambda r: r.url.split("?")[0].endswith("/events") and r.status == 503):
        ask(page, "where is my package")
        expect(bot_messages(page).nth(1)).to_be_visible()  # the answer comes with the POST
    response = requests.post(f"{full_site.server_url}/admin/conversations/{conversation_id(page)}/messages",
                             json={"text": "Dana here, still on it.", "author": "Dana"},
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10)
    assert response.status_code == 201
    # After Retry-After (10 s) the widget asks again, is refused again, and re-fetches the history.
    expect(page.locator(".msg.agent .bubble")).to_have_text("Dana here, still on it.", timeout=20_000)
