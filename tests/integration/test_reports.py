"""``parley report`` and ``/admin/report``: the figures an admin reads, from a log with known ones."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from parley.cli import main
from parley.data.redaction import Redactor
from parley.webhooks.app import create_app
from tests.conftest import CONFIG, make_settings
from tests.integration.report_support import NONSENSE, PSEUDONYM_KEY, SMS_CUSTOMER, SeededLog, seeded_log

ADMIN = {"Authorization": "Bearer report-admin-token"}


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeededLog]:
    with seeded_log(request.param, tmp_path) as seeded:
        yield seeded


def cli(log: SeededLog, *args: str) -> CliRunner.invoke:  # type: ignore[valid-type]
    result = CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), *args], env=log.env)
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def test_report_json_has_the_figures_of_the_log(log: SeededLog) -> None:
    report = json.loads(cli(log, "report", "--json").stdout)
    assert report["conversations"] == 5 and report["handed_off"] == 2
    assert report["containment_rate"] == pytest.approx(0.6) and report["handoff_rate"] == pytest.approx(0.4)
    assert report["handoff_reasons"] == {"asked for a person": 1, "low confidence": 1}
    assert report["csat"] == {"ratings": 2, "satisfied_share": 0.5, "mean": 3.5, "by_score": {"2": 1, "5": 1}}
    # Two handoffs: first replies after 60 s and 180 s, resolutions after 600 s and 1800 s.
    assert report["time_to_first_rep_response_seconds"] == {"count": 2, "p50": 120.0, "p90": 168.0}
    assert report["time_to_resolution_seconds"] == {"count": 2, "p50": 1200.0, "p90": 1680.0}
    assert (report["thumbs_up"], report["thumbs_down"]) == (1, 1)
    # Asked twice (once shouting), never answered: the top of the list, counted together.
    top = report["top_questions"][0]
    assert top == {"text": min(NONSENSE, NONSENSE.upper()), "count": 2, "kind": "unanswered"}
    channels = {part["key"]: part for part in report["by_channel"]}
    assert {key: (part["conversations"], part["handed_off"]) for key, part in channels.items()} == {
        "slack": (1, 1), "twilio": (1, 1), "widget": (3, 0)}
    assert channels["widget"]["containment_rate"] == 1.0 and channels["twilio"]["containment_rate"] == 0.0
    assert (channels["widget"]["thumbs_up"], channels["widget"]["thumbs_down"]) == (1, 1)
    days = {part["key"]: part for part in report["by_day"]}
    assert {key: (part["conversations"], part["handed_off"]) for key, part in days.items()} == {
        "2026-01-10": (2, 0), "2026-01-11": (3, 2)}


def test_report_window_and_channel(log: SeededLog) -> None:
    january_10 = json.loads(cli(log, "report", "--json", "--since", "2026-01-10", "--until", "2026-01-11").stdout)
    assert (january_10["conversations"], january_10["handed_off"]) == (2, 0)
    assert january_10["csat"]["ratings"] == 0 and january_10["time_to_resolution_seconds"]["p50"] is None
    assert january_10["since"] == "2026-01-10T00:00:00+00:00"
    sms = json.loads(cli(log, "report", "--json", "--channel", "twilio").stdout)
    assert (sms["conversations"], sms["handed_off"], sms["csat"]["mean"]) == (1, 1, 5.0)
    assert [part["key"] for part in sms["by_channel"]] == ["twilio"]
    assert sms["time_to_first_rep_response_seconds"] == {"count": 1, "p50": 60.0, "p90": 60.0}


def test_report_questions_are_redacted(log: SeededLog) -> None:
    log.say("my card 4111 1111 1111 1111 was declined, call +1 415 555 0199", log_time(), channel="widget",
            conversation_id="w-9", sender="browser-9")
    questions = json.loads(cli(log, "report", "--json", "--low-confidence", "1").stdout)["top_questions"]
    texts = {question["text"] for question in questions if question["kind"] == "low_confidence"}
    assert texts == {"my card [CARD] was declined, call [PHONE]", "where is my order [ORDER]",
                     "my invoice total looks wrong"}


def log_time():  # noqa: ANN201 - a moment inside the seeded window
    from tests.integration.report_support import JAN11
    return JAN11


def test_report_html_is_a_page_of_charts(log: SeededLog, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    result = cli(log, "report", "-o", str(target))
    assert f"report written to {target}" in result.stderr and result.stdout == ""
    page = target.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>")
    assert len(re.findall(r"<svg[^>]*xmlns=\"http://www.w3.org/2000/svg\"", page)) == 5
    assert "<script" not in page and "http://kozea" not in page  # nothing to run or fetch
    assert re.search(r'id="containment"><b>60\.0%</b>', page)
    assert "ZORBLAX QUINTESSENCE OF FLUMPH?" in page


def test_admin_report_needs_the_token_and_serves_html_and_json(log: SeededLog, tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, **log.env, PARLEY_ADMIN_TOKEN="report-admin-token"),
                     start_workers=False)
    client = app.test_client()
    try:
        assert client.get("/admin/report").status_code == 401
        page = client.get("/admin/report?channel=widget", headers=ADMIN)
        assert page.status_code == 200 and page.mimetype == "text/html"
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert b"channel widget" in page.data and page.data.count(b"<svg") == 5
        figures = client.get("/admin/report?format=json&since=2026-01-11", headers=ADMIN).get_json()
        assert (figures["conversations"], figures["handed_off"]) == (3, 2)
        bad = client.get("/admin/report?format=pdf", headers=ADMIN)
        assert bad.status_code == 400 and bad.get_json()["error"] == "format must be html or json"
        assert client.get("/admin/report?until=soon", headers=ADMIN).status_code == 400
    finally:
        app.extensions["parley"].close()


def test_handoff_steps_export_redacted_and_joinable(log: SeededLog) -> None:
    rows = [json.loads(line) for line in cli(log, "export", "--what", "handoffs").stdout.splitlines()]
    assert [row["kind"] for row in rows] == ["requested", "claimed", "first_reply", "resolved"] * 2
    pseudonym = Redactor(key=PSEUDONYM_KEY.encode()).pseudonym
    assert rows[0]["conversation_id"] == pseudonym(SMS_CUSTOMER) and rows[0]["customer"] == pseudonym(SMS_CUSTOMER)
    assert rows[1]["actor"] == pseudonym("U0REP") and rows[0]["reason"] == "asked for a person"
    assert SMS_CUSTOMER not in json.dumps(rows)
    # The same pseudonyms as the messages' export: the two files join on conversation_id.
    messages = [json.loads(line) for line in cli(log, "export").stdout.splitlines()]
    assert {row["conversation_id"] for row in rows} <= {row["conversation_id"] for row in messages}
    csv_out = cli(log, "export", "--what", "handoffs", "--format", "csv", "--channel", "slack", "--no-redact")
    assert csv_out.stdout.splitlines()[0] == "event_id,conversation_id,channel,customer,kind,reason,actor,created_at"
    assert len(csv_out.stdout.splitlines()) == 5 and "D1:U0CUST" in csv_out.stdout
    assert "exported 4 handoff steps (NOT redacted)" in csv_out.stderr
