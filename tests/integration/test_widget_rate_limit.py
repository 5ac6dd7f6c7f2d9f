"""The widget's rate limiter: in-process for the embedded mode, shared in Redis for many pods."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from parley.errors import Unavailable
from parley.stores.ratelimit import LimitsRateLimiter
from parley.stores.redis import connect
from tests.integration.conftest import url_of
from tests.integration.redis_processes import delete_prefix


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"parley-test-{uuid.uuid4().hex[:8]}"
    yield name
    used = [request.getfixturevalue(held) for held in ("redis_url", "storage") if held in request.fixturenames]
    for url in used:
        if url != "memory://":
            delete_prefix(connect(url), name)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("cluster", marks=pytest.mark.redis)])
def storage(request: pytest.FixtureRequest) -> str:
    return "memory://" if request.param == "memory" else url_of(request, request.param)


def test_a_key_over_its_limit_waits_for_the_window_to_move(storage: str, prefix: str) -> None:
    limiter = LimitsRateLimiter(storage, key_prefix=prefix)
    assert [limiter.hit("browser-a", limit=3, window=60) for _ in range(3)] == [0, 0, 0]
    assert 1 <= limiter.hit("browser-a", limit=3, window=60) <= 60
    assert limiter.hit("browser-b", limit=3, window=60) == 0  # each browser has its own count


def test_every_process_counts_together_in_redis(redis_url: str, prefix: str) -> None:
    pod_a, pod_b = LimitsRateLimiter(redis_url, key_prefix=prefix), LimitsRateLimiter(redis_url, key_prefix=prefix)
    assert [pod_a.hit("browser", limit=2, window=60), pod_b.hit("browser", limit=2, window=60)] == [0, 0]
    assert pod_a.hit("browser", limit=2, window=60) > 0


def test_redis_down_is_unavailable_not_a_crash() -> None:
    limiter = LimitsRateLimiter("redis://127.0.0.1:1/0")
    with pytest.raises(Unavailable, match="rate limiter storage unreachable"):
        limiter.hit("browser", limit=2, window=60)
