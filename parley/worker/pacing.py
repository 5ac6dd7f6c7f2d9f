"""Acknowledgements first: the workers take new work only while the process still answers requests promptly.

Under gevent a greenlet runs until it waits, so workers busy with CPU (retrieval, the offline
engine, building prompts, parsing answers) delay every request queued behind them, webhook acks
included, and a platform that waits too long for its ack retries. ``LoopLag`` measures that
delay the way a request feels it: how late a short timer fires. While it is over the limit the
fetcher claims nothing new; the messages stay safe in the inbox, and the workers already running
finish theirs. One worker is always allowed, so a process flooded with acks still answers; one, not
a batch: CPU-bound answers claimed together would hog the loop in turn.
Without gevent (threads) the same timer measures how long a thread waits for the interpreter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Slack's deadline is 3 s, but a p99 under 100 ms is the promise: stay well inside it.
LAG_LIMIT = 0.025
INTERVAL = 0.01


class LoopLag:
    def __init__(self, *, limit: float = LAG_LIMIT, interval: float = INTERVAL) -> None:
        self.limit = limit
        self._interval = interval
        self._lag = 0.0
        self._stopping = threading.Event()

    @property
    def lag(self) -> float:
        """How late the latest timer fired, in seconds."""
        return self._lag

    def start(self) -> None:
        threading.Thread(target=self._measure, daemon=True, name="parley-loop-lag").start()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def late(self) -> bool:
        return self._lag > self.limit

    def wait_until_prompt(self, stopping: threading.Event, *, busy: Callable[[], int]) -> None:
        """Return once the loop is prompt again, or no worker is ``busy``, or on stopping."""
        while self.late and busy() and not stopping.wait(self._interval):
            pass

    def _measure(self) -> None:
        while True:
            asked = time.monotonic()
            if self._stopping.wait(self._interval):
                return
            self._lag = max(0.0, time.monotonic() - asked - self._interval)
