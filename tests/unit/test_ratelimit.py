"""The in-process rate limiter: limits' moving window, with its memory swept once a second."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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


SWEEP_UNDER_GEVENT = textwrap.dedent("""
    from gevent import monkey; monkey.patch_all()
    import gevent
    from parley.stores.ratelimit import SWEEP_CHUNK, LimitsRateLimiter

    limiter = LimitsRateLimiter("memory://")
    storage = limiter._limiter.storage
    for n in range(20 * SWEEP_CHUNK):
        limiter.hit(f"sender:{n}", limit=5, window=60)
    ticks, allowed = [], []
    def customer():  # a sender writing while the sweep runs: limited as ever
        for _ in range(1000):
            ticks.append(1)
            allowed.append(limiter.hit("sender:during", limit=5, window=60) == 0)  # 0: no wait
            gevent.sleep(0)
    ticker = gevent.spawn(customer)
    sweep = gevent.spawn(storage._MemoryStorage__expire_events)  # what the timer runs
    sweep.join()
    print("ticks during the sweep", len(ticks) >= 10, "keys kept", len(storage.events) == 20 * SWEEP_CHUNK + 1)
    ticker.join()
    print("allowed", allowed.count(True), "of", len(allowed))
""")


def test_a_sweep_of_many_keys_lets_the_event_loop_serve_in_between() -> None:
    # Under gevent the sweep shares the one thread of the webhook acks: one stretch over every key
    # of the last minute would hold them all until it ends.
    done = subprocess.run([sys.executable, "-c", SWEEP_UNDER_GEVENT], capture_output=True, text=True, timeout=60,
                          check=True)
    assert done.stdout.splitlines() == ["ticks during the sweep True keys kept True", "allowed 5 of 1000"]
