"""The in-process rate limiter: limits' moving window, with its memory swept once a second."""

from __future__ import annotations

import time

from parley.stores.ratelimit import SWEEP_SECONDS, LimitsRateLimiter, SweptMemoryStorage


def test_the_moving_window_still_limits_each_key_on_its_own() -> None:
    limiter = LimitsRateLimiter("memory://")

    assert [limiter.hit("sender:a", limit=2, window=60) for _ in range(2)] == [0, 0]
    assert limiter.hit("sender:a", limit=2, window=60) > 0
    assert limiter.hit("sender:b", limit=2, window=60) == 0


def test_the_sweep_is_scheduled_once_a_second_not_every_10_ms() -> None:
    # If limits renamed the hook this overrides, the sweep would fall back to every 10 ms.
    limiter = LimitsRateLimiter("memory://")
    limiter.hit("sender:a", limit=5, window=60)
    storage = limiter._limiter.storage
    assert isinstance(storage, SweptMemoryStorage)
    time.sleep(0.05)  # the first sweep, scheduled by limits' constructor, has run by now
    limiter.hit("sender:b", limit=5, window=60)
    assert storage.timer.interval == SWEEP_SECONDS


def test_passed_windows_are_freed_and_their_keys_forgotten() -> None:
    limiter = LimitsRateLimiter("memory://")
    storage = limiter._limiter.storage
    for n in range(500):
        limiter.hit(f"sender:{n}", limit=5, window=1)
    limiter.hit("sender:recent", limit=5, window=60)
    assert len(storage.events) == 501

    time.sleep(1.1)  # the 1-second windows have passed
    storage._MemoryStorage__expire_events()  # what the timer runs every SWEEP_SECONDS

    # limits itself keeps every key it ever saw, with an empty window, swept again forever.
    assert list(storage.events) == [key for key in storage.events if "recent" in key] and len(storage.events) == 1


def test_first_is_true_once_per_window_per_key() -> None:
    limiter = LimitsRateLimiter("memory://")

    assert limiter.first("message:slack:1", window=1) and limiter.first("message:slack:2", window=1)
    assert not limiter.first("message:slack:1", window=1)
    time.sleep(1.05)
    assert limiter.first("message:slack:1", window=1)
