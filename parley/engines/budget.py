"""The optional monthly token budget: past it, the offline engine answers until the month turns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


def month_start(now: float) -> datetime:
    moment = datetime.fromtimestamp(now, UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class TokenBudget:
    """Tokens spent this calendar month (UTC) against a limit; None means no limit.

    ``used_since`` reads what the conversation log already billed this month, so a restart does not
    reset the count.
    """

    def __init__(self, limit: int | None, *, used_since: Callable[[datetime], int],
                 clock: Callable[[], float] = time.time) -> None:
        self.limit = limit
        self._used_since = used_since
        self._clock = clock
        self._lock = threading.Lock()
        self._month: datetime | None = None
        self._used = 0

    def exhausted(self) -> bool:
        if self.limit is None:
            return False
        with self._lock:
            self._roll()
            return self._used >= self.limit

    def spend(self, tokens: int) -> None:
        if self.limit is None or tokens <= 0:
            return
        with self._lock:
            self._roll()
            self._used += tokens

    @property
    def used(self) -> int:
        with self._lock:
            self._roll()
            return self._used

    def _roll(self) -> None:
        current = month_start(self._clock())
        if current != self._month:
            self._month = current
            self._used = self._used_since(current)
