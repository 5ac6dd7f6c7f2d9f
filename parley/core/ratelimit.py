"""Counting hits: the ``RateLimiter`` interface (the widget's limits) and the ``FloodGate`` one
(the webhooks' flood control), with the flood gate built on any rate limiter.

A webhook message is judged once on its way to the inbox: a platform's retry of a message already
judged is the same message and is not counted again; a message over any of its windows is answered
with one notice a window, then dropped. Counting it takes several of the limiter's hits; a store that
can do them in one step (one Redis script) implements ``FloodGate`` itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from parley.core.envelope import Envelope

Verdict = Literal["allow", "notify", "drop"]


class RateLimiter(Protocol):
    """Counts hits per key over the last ``window`` seconds; shared by every process in Redis."""

    def hit(self, key: str, *, limit: int, window: int) -> int:
        """Count one hit; 0 when it is allowed, else the seconds until one more would be."""
        ...

    def first(self, key: str, *, window: int) -> bool:
        """True the first time ``key`` is seen in ``window`` seconds (one cheap write, no window kept)."""
        ...


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` messages counted under ``key`` in any ``seconds``."""

    key: str
    limit: int
    seconds: int


@dataclass(frozen=True, slots=True)
class FloodCount:
    """What counting one message takes: ``FloodGate.count``'s arguments."""

    message_key: str
    windows: tuple[Window, ...]
    notice_key: str
    retry_seconds: int


class CountedPut(Protocol):
    """Count a message and store what the verdict makes of it in one step, where one store holds
    both the windows and the inbox (one Redis): ``envelope`` when allowed, ``throttled`` when
    notified, nothing when dropped. The verdict, and whether it was stored (not a duplicate)."""

    def __call__(self, envelope: Envelope, throttled: Envelope, count: FloodCount) -> tuple[Verdict, bool]:
        ...


class FloodGate(Protocol):
    def count(self, message_key: str, windows: Sequence[Window], *, notice_key: str,
              retry_seconds: int) -> Verdict:
        """Count one message in each of its windows, once per ``message_key`` in ``retry_seconds``.

        ``allow`` when the message was counted before (a retry) or every window had room; over a
        window, ``notify`` the first time in the longest window for ``notice_key``, else ``drop``.
        A window with no room does not count the message (as a moving window does not).
        """
        ...


class LimiterFloodGate:
    """A flood gate made of a ``RateLimiter``'s hits: one step per window (in process, or where one
    script cannot reach every key, as on a Redis Cluster)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    def count(self, message_key: str, windows: Sequence[Window], *, notice_key: str,
              retry_seconds: int) -> Verdict:
        if not self._limiter.first(message_key, window=retry_seconds):
            return "allow"
        waits = [self._limiter.hit(w.key, limit=w.limit, window=w.seconds) for w in windows]
        if not any(waits):
            return "allow"
        longest = max(w.seconds for w in windows)
        return "notify" if self._limiter.hit(notice_key, limit=1, window=longest) == 0 else "drop"
