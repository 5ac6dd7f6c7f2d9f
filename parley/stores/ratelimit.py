"""``core.ratelimit.RateLimiter`` on the ``limits`` library: moving windows in memory or in Redis."""

from __future__ import annotations

import math
import threading
import time

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from parley.errors import Unavailable

# How often the in-process storage frees the windows that have passed.
SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    """limits' in-process storage, freeing passed windows once a second instead of every 10 ms.

    Its reads already ignore expired entries: the sweep only frees memory, and it walks every key,
    taking each one's lock. With a few thousand customers inside the last minute, sweeping every
    10 ms took a whole core under gevent and held the webhook acks behind it (embedded mode at 500
    events/s, bench/inbox.py: most of the process's CPU was the sweep). limits offers no setting for
    the interval, so this overrides the one method that schedules the sweep (its name-mangled
    name; ``limits`` is pinned, and tests/unit/test_ratelimit.py proves the sweep still runs).
    """

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the base class's private hook
        if not self.timer.is_alive():
            self.timer = threading.Timer(SWEEP_SECONDS, self._MemoryStorage__expire_events)
            self.timer.daemon = True
            self.timer.start()


class LimitsRateLimiter:
    """A moving window (no burst at a window's edge); ``memory://`` in-process, ``redis://`` shared.

    With Redis every process and pod counts together, so a browser cannot beat the limit by
    landing on another pod.
    """

    def __init__(self, storage_uri: str = "memory://", *, key_prefix: str = "parley-ratelimit") -> None:
        options: dict[str, float | str | bool] = {}
        if storage_uri.startswith(("redis://", "rediss://")):
            options = {"key_prefix": key_prefix, "wrap_exceptions": True, "socket_timeout": 2.0,
                       "socket_connect_timeout": 2.0}
        storage: Storage = SweptMemoryStorage() if storage_uri == "memory://" \
            else storage_from_string(storage_uri, **options)
        self._limiter = MovingWindowRateLimiter(storage)

    def hit(self, key: str, *, limit: int, window: int) -> int:
        item = RateLimitItemPerSecond(limit, window)
        try:
            if self._limiter.hit(item, key):
                return 0
            reset_at = self._limiter.get_window_stats(item, key).reset_time
        except StorageError as exc:
            raise Unavailable(f"rate limiter storage unreachable: {exc}") from exc
        return max(1, math.ceil(reset_at - time.time()))
