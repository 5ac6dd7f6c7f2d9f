"""``parley export``: what was said is what is exported, in each format, redacted unless told not to."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from parley.cli import main
from parley.core.envelope import Reply
from parley.data.redaction import Redactor
from parley.wiring import Services, build_services
from tests.conftest import CONFIG, make_envelope, make_settings
from tests.integration.data_support import environ_for, fresh_database

SECRET_TEXT = ("I was charged twice, card 4111 1111 1111 1111. Mail me at jane.doe@example.com "
               "or call +1 415 555 0100")
PSEUDONYM_KEY = "export-pseudonym-key-4b1d"
JAN, FEB = datetime(2026, 1, 10, tzinfo=UTC).timestamp(), datetime(2026, 2, 10, tzinfo=UTC).timestamp()


class Seeded:
    def __init__(self, services: Services, env: dict[str, str]) -> None:
        self.services, self.env = services, env
        self.said: dict[str, str] = {}

    def say(self, text: str, **fields: object) -> Reply:
        envelope = make_envelope(text, **fields)
        log = self.services.log
        log.record_inbound(envelope)
        [reply] = self.services.dialogue.handle(envelope)
        log.record_replies(envelope, [reply])
        self.said[envelope.dedupe_key] = text
        self.said[reply.reply_id] = reply.text
        return reply

    def export(self, *args: str) -> list[dict[str, object]]:
        fmt = args[args.index("--format") + 1] if "--format" in args else "jsonl"
        result = CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), "export", *args], env=self.env)
        assert result.exit_code == 0, result.output
        return parse(result.stdout_bytes, fmt)


def parse(data: bytes, fmt: str) -> list[dict[str, object]]:
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode("utf-8").splitlines()]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return pq.read_table(io.BytesIO(data)).to_pylist()


@pytest.fixture(params=["sqlite", "postgres"])
def seeded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeded]:
    with fresh_database(request.param, tmp_path) as url:
        env = {"PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_PSEUDONYM_KEY": PSEUDONYM_KEY, **environ_for(url)}
        services = build_services(make_settings(tmp_path, **env))
        data = Seeded(services, env)
        card = data.say(SECRET_TEXT, channel="widget", conversation_id="w-1", sender="browser-1",
                        timestamp=JAN)
        services.log.record_feedback(conversation_id="w-1", channel="widget", message_id=card.reply_id,
                                     score=-1, comment="wrong! write to jane.doe@example.com")
        data.say("where is my order A-123456", channel="twilio", conversation_id="+14155550100",
                 sender="+14155550100", timestamp=FEB)
        yield data
        services.close()
        services.log.database.dispose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_export_redacts_personal_data_by_default(seeded: Seeded, fmt: str) -> None:
    rows = seeded.export("--format", fmt)
    # Every id is a pseudonym, keyed by PARLEY_PSEUDONYM_KEY: stable, and no conversation shows.
    pseudonym = Redactor(key=PSEUDONYM_KEY.encode()).pseudonym
    assert [row["message_id"] for row in rows] == [pseudonym(message_id) for message_id in seeded.said]
    said = {pseudonym(message_id): text for message_id, text in seeded.said.items()}
    by_id = {row["message_id"]: row for row in rows}
    [question] = [row for row in rows if row["direction"] == "in" and row["channel"] == "widget"]
    assert question["text"] == ("I was charged twice, card [CARD]. Mail me at [EMAIL] or call [PHONE]")
    [order] = [row for row in rows if row["direction"] == "in" and row["channel"] == "twilio"]
    assert order["text"] == "where is my order [ORDER]"  # the pattern configured in parley.yaml
    assert "+14155550100" not in json.dumps([{k: str(v) for k, v in row.items()} for row in rows])
    sms = [row for row in rows if row["channel"] == "twilio"]
    assert len({row["conversation_id"] for row in sms}) == 1  # pseudonyms still group a conversation
    [answer] = [row for row in rows if row["in_reply_to"] == question["message_id"]]
    assert by_id[answer["message_id"]]["text"] == said[str(answer["message_id"])]
    assert int(answer["feedback_score"]) == -1
    assert answer["feedback_comment"] == "wrong! write to [EMAIL]"
    assert answer["engine"] == "offline" and answer["intent"] == "double-charge"
    assert str(answer["model_version"]).startswith("knowledge-")  # no model trained: the articles' own questions
    exported = json.dumps([{k: str(v) for k, v in row.items()} for row in rows])
    assert "w-1" not in exported and "browser-1" not in exported  # the widget conversation and browser


def test_a_redacted_export_shows_no_widget_conversation_id(tmp_path: Path) -> None:
    """A real widget conversation, exported: its id is in no column (it was in message_id and in_reply_to)."""
    from parley.webhooks.app import create_app

    app = create_app(make_settings(tmp_path, PARLEY_ADMIN_TOKEN="s3cret-token"))
    client = app.test_client()
    try:
        first = client.post("/widget/api/messages", json={"text": "How do I reset my password?"}).get_json()
        conversation_id = first["conversation_id"]
        again = client.post("/widget/api/messages", headers={"X-Parley-Secret": first["secret"]},
                            json={"text": "and how long does delivery take?", "conversation_id": conversation_id})
        assert again.status_code == 200
        auth = {"Authorization": "Bearer s3cret-token"}
        for fmt in ("jsonl", "csv", "parquet"):
            data = client.get(f"/admin/export?format={fmt}", headers=auth).data
            rows = parse(data, fmt)
            assert len(rows) == 4
            assert conversation_id not in json.dumps([{k: str(v) for k, v in row.items()} for row in rows])
            assert conversation_id.encode() not in data
            assert first["secret"].encode() not in data
            questions = {row["message_id"] for row in rows if row["direction"] == "in"}
            assert {row["in_reply_to"] for row in rows if row["direction"] == "out"} == questions
        raw = parse(client.get("/admin/export?redact=false", headers=auth).data, "jsonl")
        assert {row["conversation_id"] for row in raw} == {conversation_id}  # unredacted: as logged
    finally:
        app.extensions["parley"].close()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_no_redact_exports_exactly_what_was_said(seeded: Seeded, fmt: str) -> None:
    rows = seeded.export("--format", fmt, "--no-redact")
    assert {row["message_id"]: row["text"] for row in rows} == seeded.said
    assert {row["customer"] for row in rows} == {"browser-1", "+14155550100"}


def test_export_filters_by_time_and_channel(seeded: Seeded) -> None:
    january = seeded.export("--since", "2026-01-01", "--until", "2026-02-01", "--no-redact")
    assert [row["text"] for row in january if row["direction"] == "in"] == [SECRET_TEXT]
    twilio = seeded.export("--channel", "twilio", "--no-redact")
    assert {row["channel"] for row in twilio} == {"twilio"} and len(twilio) == 2


def test_export_to_a_file_reports_the_count(seeded: Seeded, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    result = CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), "export", "--format", "parquet",
                                       "-o", str(target)], env=seeded.env)
    assert result.exit_code == 0, result.output
    assert "exported 4 messages (redacted)" in result.stderr
    assert pq.read_table(target).num_rows == 4


@pytest.mark.parametrize(("text", "redacted"), [
    ("mail a.b+c@mail.example.co.uk now", "mail [EMAIL] now"),
    ("my card is 4242-4242-4242-4242", "my card is [CARD]"),
    ("call (212) 736-5000 or +44 20 7946 0958", "call [PHONE] or [PHONE]"),
    ("ordered 2026-05-01, order 12345678, 3 items at 12.50", "ordered 2026-05-01, order 12345678, 3 items at 12.50"),
    ("not a card: 1234 5678 9012 3456", "not a card: 1234 5678 9012 3456"),  # nor a phone number
])
def test_redaction_patterns(text: str, redacted: str) -> None:
    assert Redactor.build({}, b"key").text(text) == redacted


def test_pseudonyms_are_keyed() -> None:
    assert Redactor(key=b"a").pseudonym("+14155550100") == Redactor(key=b"a").pseudonym("+14155550100")
    assert Redactor(key=b"a").pseudonym("+14155550100") != Redactor(key=b"b").pseudonym("+14155550100")


def test_admin_export_needs_the_bearer_token(seeded: Seeded, tmp_path: Path) -> None:
    from parley.webhooks.app import create_app

    settings = make_settings(tmp_path, **seeded.env, PARLEY_ADMIN_TOKEN="s3cret-token")
    app = create_app(settings, start_workers=False)
    client = app.test_client()
    try:
        assert client.get("/admin/export").status_code == 401
        assert client.get("/admin/export", headers={"Authorization": "Bearer wrong"}).status_code == 401
        auth = {"Authorization": "Bearer s3cret-token"}
        response = client.get("/admin/export?format=csv&channel=widget", headers=auth)
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = parse(response.data, "csv")
        assert [row["text"] for row in rows][0] == (
            "I was charged twice, card [CARD]. Mail me at [EMAIL] or call [PHONE]")
        raw = client.get("/admin/export?format=parquet&redact=false", headers=auth)
        assert {row["text"] for row in parse(raw.data, "parquet")} == set(seeded.said.values())
        bad = client.get("/admin/export?format=xml", headers=auth)
        assert bad.status_code == 400 and "format must be one of" in bad.get_json()["error"]
        assert client.get("/admin/export?since=yesterday", headers=auth).status_code == 400
    finally:
        app.extensions["parley"].close()


def test_feedback_goes_only_on_a_bot_message_of_that_conversation_and_can_change(seeded: Seeded) -> None:
    log = seeded.services.log
    question, answer = list(seeded.said)[:2]
    assert not log.record_feedback(conversation_id="w-1", channel="widget", message_id=question, score=1)
    assert not log.record_feedback(conversation_id="w-2", channel="widget", message_id=answer, score=1)
    assert not log.record_feedback(conversation_id="w-1", channel="twilio", message_id=answer, score=1)
    assert not log.record_feedback(conversation_id="w-1", channel="widget", message_id="nope", score=1)
    assert log.record_feedback(conversation_id="w-1", channel="widget", message_id=answer, score=1)
    rows = seeded.export("--no-redact")
    assert len(rows) == 4  # a changed vote is one verdict, not a second row
    assert [(row["feedback_score"], row["feedback_comment"]) for row in rows if row["message_id"] == answer] == [
        (1, None)]
