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


def test_passed_windows_are_still_freed() -> None:
    limiter = LimitsRateLimiter("memory://")
    storage = limiter._limiter.storage
    for n in range(500):
        limiter.hit(f"sender:{n}", limit=5, window=1)
    held = lambda: sum(len(entries) for key, entries in storage.events.items()  # noqa: E731
                       if "keep-sweeping" not in key)
    assert held() == 500

    deadline = time.monotonic() + 10
    while held() and time.monotonic() < deadline:
        time.sleep(0.2)
        limiter.hit("sender:keep-sweeping", limit=5, window=1)
    assert held() == 0
