"""``data.retention_days``: conversations idle for longer are deleted, on a schedule.

The sweep is a periodic job of the worker pool (like the handoff reminders); every process runs it,
and a row per interval in ``periodicrun`` lets exactly one of them do the work each time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError

from parley.stores import sql_erase
from parley.stores.sql_tables import PeriodicRun

logger = structlog.get_logger("parley.gdpr")


class RetentionSweep:
    """Deletes conversations idle for more than ``days``, once per interval across the cluster.

    Every process runs it (the worker pool runs each periodic job everywhere); the first to insert
    the interval's row in ``periodicrun`` does the work and the others find the row taken, so the
    schedule needs no leader and survives any process dying.
    """

    name = "data-retention"

    def __init__(self, database: Engine, *, days: int, every_seconds: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.days = days
        self.every_seconds = every_seconds
        self._clock = clock

    def run(self, now: float | None = None) -> sql_erase.Deleted | None:
        """Sweep as of ``now``; None when another process has this interval's sweep."""
        now = self._clock() if now is None else now
        if not self._claim(int(now // self.every_seconds)):
            return None
        cutoff = datetime.fromtimestamp(now, UTC).replace(tzinfo=None) - timedelta(days=self.days)
        total = sql_erase.Deleted()
        while True:
            with self.database.begin() as connection:
                ids = sql_erase.idle_conversations(connection, cutoff, sql_erase.CHUNK)
                total += sql_erase.delete_conversations(connection, ids)
            if len(ids) < sql_erase.CHUNK:
                break
        logger.info("retention_swept", days=self.days, conversations=total.conversations,
                    messages=total.messages)
        return total

    def _claim(self, slot: int) -> bool:
        try:
            with self.database.begin() as connection:
                connection.execute(insert(PeriodicRun).values(job=self.name, slot=slot,
                                                              created_at=datetime.now(UTC)))
        except IntegrityError:
            return False
        return True
