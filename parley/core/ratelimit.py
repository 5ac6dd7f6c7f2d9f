"""The ``RateLimiter`` interface: the widget's limits and the webhooks' flood control count with it."""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    """Counts hits per key over the last ``window`` seconds; shared by every process in Redis."""

    def hit(self, key: str, *, limit: int, window: int) -> int:
        """Count one hit; 0 when it is allowed, else the seconds until one more would be."""
        ...

    def first(self, key: str, *, window: int) -> bool:
        """True the first time ``key`` is seen in ``window`` seconds (one cheap write, no window kept)."""
        ...
