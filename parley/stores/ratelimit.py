"""``core.ratelimit.RateLimiter`` on the ``limits`` library: moving windows in memory or in Redis;
and ``RedisFloodGate``, the webhooks' flood control in one Redis script."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from parley.core.ratelimit import Verdict, Window
from parley.errors import Unavailable
from parley.stores.redis_topology import Client, unavailable

# How often the in-process storage frees the windows that have passed.
SWEEP_SECONDS = 10.0
# Keys swept between two yields to the event loop. A whole sweep walks every sender and conversation
# of the last minute: at 500 new customers a second it held the hub for hundreds of milliseconds
# (py-spy, bench/inbox.py embedded at 500/s: 11% of the process's time, in one stretch per sweep).
SWEEP_CHUNK = 256


class SweptMemoryStorage(MemoryStorage):
    """limits' in-process storage, freeing passed windows every 10 s instead of every 10 ms, and
    forgetting the keys they leave empty.

    Its reads already ignore expired entries: the sweep only frees memory, and it walks every key,
    taking each one's lock. With a few thousand customers inside the last minute, sweeping every
    10 ms took a whole core under gevent and held the webhook acks behind it (embedded mode at 500
    events/s, bench/inbox.py: most of the process's CPU was the sweep); and limits keeps every key
    it ever saw, each empty window swept again forever. limits offers no setting for either, so this
    overrides the two methods that schedule and run the sweep (by their name-mangled names;
    ``limits`` is pinned, and tests/unit/test_ratelimit.py proves the sweep still runs and frees).
    """

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the base class's private hook
        if not self.timer.is_alive():
            self.timer = threading.Timer(SWEEP_SECONDS, self._MemoryStorage__expire_events)
            self.timer.daemon = True
            self.timer.start()

    def _MemoryStorage__expire_events(self) -> None:  # noqa: N802 - the base class's private hook
        now = time.time()
        for number, key in enumerate(list(self.events)):
            if number % SWEEP_CHUNK == SWEEP_CHUNK - 1:
                time.sleep(0)  # let the acks in: under gevent the sweep shares their one thread
            with self.locks[key]:
                # Newest first, as limits keeps them: the live entries are a prefix.
                events = self.events.get(key) or []
                live = [entry for entry in events if entry.expiry > now]
                if live:
                    self.events[key] = live
                else:
                    self.events.pop(key, None)
                    self.locks.pop(key, None)
        for key in [key for key, until in list(self.expirations.items()) if until <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)


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
        storage: Storage = SweptMemoryStorage() if storage_uri == "memory://" \
            else storage_from_string(storage_uri, **options)
        self._limiter = MovingWindowRateLimiter(storage)
        # In process, ``first`` needs no window: insertion order is expiry order for each window.
        self._firsts: dict[int, OrderedDict[str, float]] | None = {} if storage_uri == "memory://" else None
        self._lock = threading.Lock()

    def hit(self, key: str, *, limit: int, window: int) -> int:
        item = RateLimitItemPerSecond(limit, window)
        try:
            if self._limiter.hit(item, key):
                return 0
            reset_at = self._limiter.get_window_stats(item, key).reset_time
        except StorageError as exc:
            raise Unavailable(f"rate limiter storage unreachable: {exc}") from exc
        return max(1, math.ceil(reset_at - time.time()))

    def first(self, key: str, *, window: int) -> bool:
        if self._firsts is None:  # shared: one INCR (with its expiry) in Redis
            try:
                return self._limiter.storage.incr(f"first/{key}", window) == 1
            except StorageError as exc:
                raise Unavailable(f"rate limiter storage unreachable: {exc}") from exc
        now = time.monotonic()
        with self._lock:
            seen = self._firsts.setdefault(window, OrderedDict())
            while seen and next(iter(seen.values())) <= now:
                seen.popitem(last=False)
            if key in seen:
                return False
            seen[key] = now + window
            return True


# A Lua function: KEYS[k] is the message's "judged" mark, KEYS[k+1 .. #KEYS-1] its windows' lists,
# KEYS[#KEYS] the notice mark; ARGV[a] the retry seconds, ARGV[a+1] the notice seconds, then each
# window's limit and seconds. A window is a moving window as the ``limits`` library keeps one (the
# newest ``limit`` timestamps, newest first); the time is the server's, so pods with skewed clocks
# count alike. Shared with the inbox's put (``redis_admission``), which runs it first.
FLOOD = """
local function flood(k, a)
  if not redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[a]) then return 'allow' end
  local time = redis.call('TIME')
  local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
  local over = false
  for i = k + 1, #KEYS - 1 do
    local at = a + 2 + 2 * (i - k - 1)
    local limit, seconds = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
    local oldest = redis.call('LINDEX', KEYS[i], limit - 1)
    if oldest and tonumber(oldest) > now - seconds then
      over = true
    else
      redis.call('LPUSH', KEYS[i], string.format('%.6f', now))
      redis.call('LTRIM', KEYS[i], 0, limit - 1)
      redis.call('EXPIRE', KEYS[i], seconds)
    end
  end
  if not over then return 'allow' end
  if redis.call('SET', KEYS[#KEYS], '1', 'NX', 'EX', ARGV[a + 1]) then return 'notify' end
  return 'drop'
end
"""


class RedisFloodGate:
    """Flood control's whole count in one round trip to one Redis (``LimiterFloodGate`` took one per
    step: three or four scripts of the ``limits`` library, a quarter of a webhook ack's CPU).

    ``limits`` counts one window per call and cannot join them atomically, so this is one script of
    our own; a Redis Cluster runs a script only on keys of one slot, and a sender's and a
    conversation's windows are in different ones: there ``LimiterFloodGate`` stays in use.
    """

    def __init__(self, client: Client, *, prefix: str) -> None:
        self._prefix = prefix
        self._script = client.register_script(FLOOD + "return flood(1, 1)")

    def count(self, message_key: str, windows: Sequence[Window], *, notice_key: str,
              retry_seconds: int) -> Verdict:
        keys, args = self.step(message_key, windows, notice_key=notice_key, retry_seconds=retry_seconds)
        with unavailable("count the message against its limits"):
            verdict = self._script(keys=keys, args=args)
        return verdict.decode() if isinstance(verdict, bytes) else verdict

    def step(self, message_key: str, windows: Sequence[Window], *, notice_key: str,
             retry_seconds: int) -> tuple[list[str], list[int]]:
        """``FLOOD``'s keys and arguments for this message, for a script that runs it."""
        keys = [message_key, *(w.key for w in windows), notice_key]
        limits = [value for w in windows for value in (w.limit, w.seconds)]
        return [f"{self._prefix}{key}" for key in keys], [retry_seconds, max(w.seconds for w in windows), *limits]
