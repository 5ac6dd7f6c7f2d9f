"""Telling a waiting customer again when nobody claimed their request in time.

Every ``every_seconds`` each process lists the open requests (from the handoff log in SQL) and puts
a re-check envelope in the inbox for each reminder that is due. The envelope's id names the
request and the reminder's number, so the inbox's dedupe lets exactly one through however many
processes run this; the conversation's worker then decides, from the session, whether it still
applies (a rep may have claimed it meanwhile) and tells the customer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from parley.core import handoff
from parley.core.envelope import Envelope
from parley.core.handoff import HandoffRules
from parley.core.inbox import Inbox
from parley.core.desk import DeskDirectory

logger = structlog.get_logger("parley.reminders")


class HandoffReminders:
    name = "handoff-reminders"

    def __init__(self, *, directory: DeskDirectory, inbox: Inbox, rules: HandoffRules,
                 every_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.inbox = inbox
        self.rules = rules
        self.every_seconds = every_seconds
        self._clock = clock

    def run(self, now: float | None = None) -> None:
        """Queue each due reminder, as of ``now`` (default: the clock's time)."""
        now = self._clock() if now is None else now
        # Older requests have had every reminder they will get; no need to read them again.
        every = self.rules.unclaimed_reminder_seconds or 0
        for request in self.directory.open_requests(since=now - every * (handoff.MAX_REMINDERS + 1)):
            due = handoff.reminders_due(self.rules, request.requested_at, now)
            if due < 1:
                continue
            message_id = f"remind:{request.conversation_id}:{request.requested_at:.0f}:{due}"
            stored = self.inbox.put(Envelope(channel="system", conversation_id=request.conversation_id,
                                             message_id=message_id, sender="parley", text="", timestamp=now,
                                             role="system", action="remind"))
            if stored:
                logger.info("handoff_reminder_due", conversation_id=request.conversation_id, reminder=due)
