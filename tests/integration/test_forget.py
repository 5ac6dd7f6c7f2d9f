"""GDPR: ``parley forget`` and ``POST /admin/forget`` erase a customer; ``data.retention_days``
deletes idle conversations once per interval across the cluster."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from parley.cli import main
from parley.data.redaction import Redactor
from parley.data.retention import RetentionSweep
from parley.stores.desk import DeskThread
from parley.stores.sql import Conversation, Feedback, HandoffEvent, Message
from parley.webhooks.app import create_app
from tests.conftest import CONFIG, make_settings
from tests.integration.redis_processes import REDIS_URL
from tests.integration.report_support import JAN11, PSEUDONYM_KEY, SeededLog, seeded_log

ADMIN = {"Authorization": "Bearer forget-admin-token"}


@pytest.fixture(params=["sqlite", "postgres"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeededLog]:
    with seeded_log(request.param, tmp_path, REDIS_URL=REDIS_URL) as seeded:
        yield seeded


def cli(log: SeededLog, *args: str) -> object:
    result = CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), *args], env=log.env)
    assert result.exit_code == 0, (result.output, result.stderr)
    return result


def rows_of(log: SeededLog, conversation_id: str) -> dict[str, int]:
    with log.database.connect() as connection:
        def count(table: type, column: object) -> int:
            return connection.scalar(select(func.count()).select_from(table).where(column == conversation_id))
        return {"conversation": count(Conversation, Conversation.id), "message": count(Message, Message.conversation_id),
                "feedback": count(Feedback, Feedback.conversation_id),
                "handoffevent": count(HandoffEvent, HandoffEvent.conversation_id),
                "deskthread": count(DeskThread, DeskThread.conversation_id)}


def test_forget_erases_the_customer_from_the_log_redis_and_later_exports(log: SeededLog) -> None:
    phone = f"+1415555{uuid.uuid4().int % 10_000:04d}"
    answer = log.say("where is my parcel?", JAN11, channel="twilio", conversation_id=phone, sender=phone)
    log.handoff(phone, JAN11, reason="asked for a person", first_reply=30, resolved=90)
    log.verdict(phone, "twilio", answer, 4, JAN11 + timedelta(minutes=5), kind="handoff")
    client = redis.Redis.from_url(REDIS_URL)
    assert client.exists(f"parley:session:{phone}")  # the dialogue kept its session in Redis
    others = [row for row in _export(log) if row["customer"] != phone]

    result = cli(log, "forget", phone, "--yes")
    erased = json.loads(result.stdout)
    assert (erased["conversations"], erased["messages"], erased["sessions_erased"]) == (1, 2, True)
    # Redacted exports made before show this conversation under this pseudonym: find its rows by it.
    assert erased["export_pseudonyms"] == [Redactor(key=PSEUDONYM_KEY.encode()).pseudonym(phone)]
    assert rows_of(log, phone) == dict.fromkeys(rows_of(log, phone), 0)
    assert not client.exists(f"parley:session:{phone}")
    assert _export(log) == others  # everyone else's rows are as they were
    # The audit line says what was done, never to whom.
    [audit] = [line for line in result.stderr.splitlines() if "customer_erased" in line]
    assert erased["request"] in audit and "conversations=1" in audit and "messages=2" in audit
    assert phone not in result.stderr and phone.removeprefix("+1") not in result.stderr

    # A message in flight at the erasure is logged after it: the tombstone keeps it out of exports.
    log.say("one more thing", JAN11 + timedelta(hours=1), channel="twilio", conversation_id=phone, sender=phone)
    assert rows_of(log, phone)["message"] == 2
    assert _export(log) == others
    handoffs = [json.loads(line) for line in cli(log, "export", "--what", "handoffs", "--no-redact").stdout.splitlines()]
    assert phone not in json.dumps(handoffs) and handoffs  # the other customers' steps remain


def test_forget_an_unknown_customer_erases_nothing(log: SeededLog) -> None:
    erased = json.loads(cli(log, "forget", "nobody-we-know", "--yes").stdout)
    assert (erased["conversations"], erased["messages"], erased["export_pseudonyms"]) == (0, 0, [])
    assert len(_export(log)) == 10


def test_forget_asks_before_erasing(log: SeededLog) -> None:
    result = CliRunner(mix_stderr=False).invoke(main, ["--config", str(CONFIG), "forget", "browser-1"],
                                                env=log.env, input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert rows_of(log, "w-1")["message"] == 2


def _export(log: SeededLog) -> list[dict[str, object]]:
    return [json.loads(line) for line in cli(log, "export", "--no-redact").stdout.splitlines()]


def test_admin_forget_erases_an_embedded_session_and_the_widget_history(tmp_path: Path) -> None:
    """Embedded mode: the sessions live in the serving process, which the admin endpoint reaches."""
    app = create_app(make_settings(tmp_path, PARLEY_ADMIN_TOKEN="forget-admin-token"))
    client, services = app.test_client(), app.extensions["parley"]
    try:
        first = client.post("/widget/api/messages", json={"text": "How do I reset my password?"}).get_json()
        conversation_id, secret = first["conversation_id"], {"X-Parley-Secret": first["secret"]}
        assert services.sessions.load(conversation_id) is not None
        assert client.post("/admin/forget", json={"customer": conversation_id}).status_code == 401
        for bad in ({}, {"customer": ""}, {"customer": 7}, [conversation_id]):
            refused = client.post("/admin/forget", json=bad, headers=ADMIN)
            assert refused.status_code == 400 and "customer" in refused.get_json()["error"]
        done = client.post("/admin/forget", json={"customer": conversation_id}, headers=ADMIN)
        assert done.status_code == 200
        assert (done.get_json()["conversations"], done.get_json()["messages"]) == (1, 2)
        assert services.sessions.load(conversation_id) is None
        history = client.get(f"/widget/api/conversations/{conversation_id}", headers=secret).get_json()
        assert history["messages"] == []
    finally:
        services.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_retention_deletes_idle_conversations_once_per_interval(kind: str, tmp_path: Path) -> None:
    with seeded_log(kind, tmp_path, PARLEY_RETENTION_DAYS="5") as log:
        [sweep] = [task for task in log.services.workers.periodic if task.name == "data-retention"]
        assert isinstance(sweep, RetentionSweep) and sweep.days == 5 and sweep.every_seconds == 3600
        now = datetime.now(UTC) + timedelta(days=10)  # the seeded replies were written 10 days before
        log.say("still here?", now - timedelta(days=1), channel="widget", conversation_id="w-1", sender="browser-1")
        other_pod = RetentionSweep(log.database, days=5)
        swept = sweep.run(now.timestamp())
        assert swept is not None and (swept.conversations, swept.messages) == (4, 8)
        assert other_pod.run(now.timestamp() + 60) is None  # the same hour: the other pod's is done
        assert {row["conversation_id"] for row in _export(log)} == {"w-1"}  # written to a day ago
        assert other_pod.run(now.timestamp() + 3600) == swept.__class__()  # next hour: nothing idle left
