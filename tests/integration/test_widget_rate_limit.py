"""The widget's rate limiter: in-process for the embedded mode, shared in Redis for many pods."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from parley.errors import Unavailable
from parley.stores.ratelimit import LimitsRateLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"parley-test-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{name}*"):
        client.delete(key)


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_key_over_its_limit_waits_for_the_window_to_move(backend: str, prefix: str) -> None:
    limiter = LimitsRateLimiter("memory://" if backend == "memory" else REDIS_URL, key_prefix=prefix)
    assert [limiter.hit("browser-a", limit=3, window=60) for _ in range(3)] == [0, 0, 0]
    assert 1 <= limiter.hit("browser-a", limit=3, window=60) <= 60
    assert limiter.hit("browser-b", limit=3, window=60) == 0  # each browser has its own count


def test_every_process_counts_together_in_redis(prefix: str) -> None:
    pod_a, pod_b = LimitsRateLimiter(REDIS_URL, key_prefix=prefix), LimitsRateLimiter(REDIS_URL, key_prefix=prefix)
    assert [pod_a.hit("browser", limit=2, window=60), pod_b.hit("browser", limit=2, window=60)] == [0, 0]
    assert pod_a.hit("browser", limit=2, window=60) > 0


def test_redis_down_is_unavailable_not_a_crash() -> None:
    limiter = LimitsRateLimiter("redis://127.0.0.1:1/0")
    with pytest.raises(Unavailable, match="rate limiter storage unreachable"):
        limiter.hit("browser", limit=2, window=60)
