"""A conversation log with known figures, for the report tests (SQLite or PostgreSQL).

Messages go through the dialogue and the log as a worker writes them; feedback and handoff steps
through the log's own calls. The log stamps steps and verdicts with the time they are written, so
the seed then moves each to the moment the scenario says (as if it had happened then).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from parley.stores.sql import Feedback, HandoffEvent
from parley.wiring import Services, build_services
from tests.conftest import make_envelope, make_settings
from tests.integration.data_support import environ_for, fresh_database

PSEUDONYM_KEY = "report-pseudonym-key-7e3a"
JAN10 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
JAN11 = datetime(2026, 1, 11, 9, 0, tzinfo=UTC)
NONSENSE = "Zorblax quintessence of flumph?"
SMS_CUSTOMER = "+14155550100"


class SeededLog:
    def __init__(self, services: Services, env: dict[str, str]) -> None:
        self.services, self.env = services, env
        self.database = services.log.database  # type: ignore[attr-defined]

    def say(self, text: str, at: datetime, **fields: object) -> str:
        """A customer message and the bot's answer; the answer's id."""
        envelope = make_envelope(text, timestamp=at.timestamp(), **fields)
        self.services.log.record_inbound(envelope)
        [reply] = self.services.dialogue.handle(envelope)
        self.services.log.record_replies(envelope, [reply])
        return reply.reply_id

    def verdict(self, conversation_id: str, channel: str, message_id: str, score: int, at: datetime,
                kind: str = "answer") -> None:
        assert self.services.log.record_feedback(conversation_id=conversation_id, channel=channel,
                                                 message_id=message_id, score=score, kind=kind)
        with self.database.begin() as connection:
            connection.execute(update(Feedback).where(Feedback.message_id == message_id)
                               .values(created_at=at.replace(tzinfo=None)))

    def handoff(self, conversation_id: str, at: datetime, *, reason: str, first_reply: float,
                resolved: float) -> None:
        """A handoff requested at ``at``, first answered and resolved so many seconds later."""
        steps = (("requested", 0.0, reason, None), ("claimed", first_reply / 2, None, "U0REP"),
                 ("first_reply", first_reply, None, "U0REP"), ("resolved", resolved, None, "U0REP"))
        for kind, after, why, actor in steps:
            self.services.log.record_handoff_event(conversation_id=conversation_id, kind=kind, reason=why,
                                                   actor=actor)
            with self.database.begin() as connection:
                connection.execute(
                    update(HandoffEvent).where(HandoffEvent.conversation_id == conversation_id,
                                               HandoffEvent.kind == kind)
                    .values(created_at=(at + timedelta(seconds=after)).replace(tzinfo=None)))


@contextmanager
def seeded_log(kind: str, tmp_path: Path, **environ: str) -> Iterator[SeededLog]:
    """Five conversations on three channels over two days:

    - widget w-1 (Jan 10): a question the bot answers, thumbs up;
    - widget w-2 (Jan 10) and w-3 (Jan 11): the same nonsense, unanswered; w-2 thumbs down;
    - twilio (Jan 11): handed off ("asked for a person"), first rep reply 60 s, resolved 600 s, rated 5;
    - slack (Jan 11): handed off ("low confidence"), first rep reply 180 s, resolved 1800 s, rated 2.
    """
    with fresh_database(kind, tmp_path) as url:
        env = {"PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_PSEUDONYM_KEY": PSEUDONYM_KEY,
               **environ_for(url), **environ}
        services = build_services(make_settings(tmp_path, **env))
        log = SeededLog(services, env)
        answered = log.say("How do I reset my password?", JAN10, channel="widget", conversation_id="w-1",
                           sender="browser-1")
        log.verdict("w-1", "widget", answered, 1, JAN10)
        unsure = log.say(NONSENSE, JAN10, channel="widget", conversation_id="w-2", sender="browser-2")
        log.verdict("w-2", "widget", unsure, -1, JAN10)
        log.say(NONSENSE.upper(), JAN11, channel="widget", conversation_id="w-3", sender="browser-3")
        sms = log.say("where is my order A-123456", JAN11, channel="twilio", conversation_id=SMS_CUSTOMER,
                      sender=SMS_CUSTOMER)
        log.handoff(SMS_CUSTOMER, JAN11, reason="asked for a person", first_reply=60, resolved=600)
        log.verdict(SMS_CUSTOMER, "twilio", sms, 5, JAN11 + timedelta(seconds=700), kind="handoff")
        desk = log.say("my invoice total looks wrong", JAN11, channel="slack", conversation_id="D1:U0CUST",
                       sender="U0CUST")
        log.handoff("D1:U0CUST", JAN11, reason="low confidence", first_reply=180, resolved=1800)
        log.verdict("D1:U0CUST", "slack", desk, 2, JAN11 + timedelta(seconds=1900), kind="handoff")
        try:
            yield log
        finally:
            services.close()
            log.database.dispose()
