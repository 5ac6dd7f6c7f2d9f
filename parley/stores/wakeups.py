"""Wake-ups per conversation: a new event wakes only those waiting on its conversation.

Thousands of open widget streams wait at once; waking all of them on every event (one condition
for everything) would cost CPU per event in proportion to the number of open streams.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class Wakeups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}
        self._closed = False

    def wait(self, key: str, check: Callable[[], T], timeout: float, *, recheck: float | None = None) -> T:
        """``check()`` as soon as it is truthy, else its last value after ``timeout`` (or on close).

        ``recheck`` bounds each wait where a wake-up may be lost (Redis pub/sub drops messages
        while it reconnects).
        """
        deadline = time.monotonic() + timeout
        while True:
            with self.listening(key) as woken:
                found = check()
                left = deadline - time.monotonic()
                if found or left <= 0 or self._closed:
                    return found
                woken.wait(left if recheck is None else min(left, recheck))

    @contextmanager
    def listening(self, key: str) -> Iterator[threading.Event]:
        """An event set by the next ``wake(key)``; register before checking, so nothing is missed."""
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiting = self._waiting.get(key)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self._waiting[key]

    def wake(self, key: str) -> None:
        with self._lock:
            waiting = list(self._waiting.get(key, ()))
        for event in waiting:
            event.set()

    def wake_all(self) -> None:
        with self._lock:
            waiting = [event for events in self._waiting.values() for event in events]
        for event in waiting:
            event.set()

    def close(self) -> None:
        """Wake every waiter for good (shutdown): open streams end, later waits return at once."""
        self._closed = True
        self.wake_all()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(events) for events in self._waiting.values())
