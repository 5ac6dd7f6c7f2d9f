"""``core.ratelimit.RateLimiter`` on the ``limits`` library: moving windows in memory or in Redis."""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from parley.errors import Unavailable


class LimitsRateLimiter:
    """A moving window (no burst at a window's edge); ``memory://`` in-process, ``redis://`` shared
    (``redis+cluster://`` on a Redis Cluster: each limit is one key, so one slot).

    With Redis every process and pod counts together, so a browser cannot beat the limit by
    landing on another pod.
    """

    def __init__(self, storage_uri: str = "memory://", *, key_prefix: str = "parley-ratelimit") -> None:
        options: dict[str, float | str | bool] = {}
        if storage_uri.startswith("rediss+cluster://"):  # `limits` spells TLS to a cluster as an option
            storage_uri, options = "redis+cluster://" + storage_uri.partition("://")[2], {"ssl": True}
        if storage_uri.startswith(("redis://", "rediss://", "redis+cluster://")):
            options |= {"key_prefix": key_prefix, "wrap_exceptions": True, "socket_timeout": 2.0,
                        "socket_connect_timeout": 2.0}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))

    def hit(self, key: str, *, limit: int, window: int) -> int:
        item = RateLimitItemPerSecond(limit, window)
        try:
            if self._limiter.hit(item, key):
                return 0
            reset_at = self._limiter.get_window_stats(item, key).reset_time
        except StorageError as exc:
            raise Unavailable(f"rate limiter storage unreachable: {exc}") from exc
        return max(1, math.ceil(reset_at - time.time()))
