"""``/admin/report`` as an admin opens it: the real server's page, in headless Chromium, under its CSP."""

from __future__ import annotations

from pathlib import Path

import requests
from playwright.sync_api import Browser, ConsoleMessage, expect

from tests.browser.conftest import ADMIN_TOKEN, Site


def test_report_page_shows_figures_and_readable_charts(browser: Browser, site: Site, output_dir: Path) -> None:
    # Something to report: an answered question and one the bot cannot answer, thumbs on both.
    for text, score in (("How do I reset my password?", 1), ("Zorblax quintessence of flumph?", -1)):
        started = requests.post(f"{site.server_url}/widget/api/messages", json={"text": text}, timeout=30).json()
        [reply] = started["replies"]
        voted = requests.post(f"{site.server_url}/widget/api/feedback", timeout=10,
                              headers={"X-Parley-Secret": started["secret"]},
                              json={"conversation_id": started["conversation_id"], "message_id": reply["id"],
                                    "score": score})
        assert voted.status_code in (200, 201, 204), voted.text
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    figures = requests.get(f"{site.server_url}/admin/report?format=json", headers=auth, timeout=30).json()
    assert figures["thumbs_up"] >= 1 and figures["thumbs_down"] >= 1

    context = browser.new_context(viewport={"width": 1360, "height": 1000}, extra_http_headers=auth)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("requestfailed", lambda request: problems.append(f"failed {request.url}"))
        response = page.goto(f"{site.server_url}/admin/report")
        assert response is not None and response.status == 200
        expect(page.get_by_role("heading", name="How the bot does")).to_be_visible()
        containment = figures["containment_rate"]
        expect(page.locator("#containment b")).to_have_text(f"{100 * containment:.1f}%")
        expect(page.locator("#thumbs b")).to_have_text(f"{figures['thumbs_up']} / {figures['thumbs_down']}")
        charts = page.locator("figure > svg")
        expect(charts).to_have_count(5)
        for index in range(5):
            box = charts.nth(index).bounding_box()
            assert box is not None and box["width"] >= 600 and box["height"] >= 300  # drawn, at its size
        # The day chart has a bar per series and day, and the titles read as text, not as code.
        assert page.locator("figure:nth-child(1) svg .series rect").count() >= 2
        expect(page.locator("figure:nth-child(1) svg .title")).to_have_text("Conversations per day, by who answered")
        expect(page.locator("figure:nth-child(4) svg .title")).to_have_text("Customers' verdicts on answers")
        # The inline stylesheet applies under the page's CSP (cards have their border).
        expect(page.locator("#containment")).to_have_css("border-top-style", "solid")
        expect(page.locator("#questions")).to_contain_text("Zorblax quintessence of flumph?")
        page.screenshot(path=output_dir / "admin-report.png", full_page=True)
        assert problems == []  # nothing refused by the CSP, nothing fetched from anywhere
    finally:
        context.close()


def test_a_full_report_reads_at_a_glance(browser: Browser, tmp_path: Path, output_dir: Path) -> None:
    """The known log of the report tests (handoffs, ratings, two days, three channels), drawn."""
    from parley.data.export import ExportQuery
    from parley.data.report import build_report
    from parley.data.report_html import render
    from tests.integration.report_support import seeded_log

    with seeded_log("sqlite", tmp_path) as log:
        page_html = render(build_report(log.database, ExportQuery(), None))
    (output_dir / "report-full.html").write_text(page_html, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    try:
        page = context.new_page()
        page.goto((output_dir / "report-full.html").as_uri())
        expect(page.locator("#containment b")).to_have_text("60.0%")
        expect(page.locator("#csat b")).to_have_text("50.0%")
        expect(page.locator("#first-response b")).to_have_text("2.0 min")
        expect(page.locator("#resolution b")).to_have_text("20.0 min")
        # Two days of stacked bars; the reasons' pie has a slice per reason, with its legend.
        assert page.locator("figure:nth-child(1) svg .series rect").count() == 4
        expect(page.locator("figure:nth-child(3) svg .legends")).to_contain_text("asked for a person")
        assert page.locator("figure:nth-child(3) svg .series path").count() >= 2
        expect(page.locator("figure:nth-child(5) svg .axis.x")).to_contain_text("5")
        page.screenshot(path=output_dir / "report-full.png", full_page=True)
    finally:
        context.close()
