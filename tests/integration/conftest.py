"""Fixtures the integration modules share: the Redis they run against (one Redis, and a real
Redis Cluster of 3 masters and 3 replicas started for the session) and inboxes on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from parley.stores.redis import connect
from parley.stores.redis_inbox import RedisInbox
from tests.integration.redis_processes import REDIS_URL, delete_prefix
from tests.support.redis_cluster import LocalRedisCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("cluster", marks=pytest.mark.redis)])
def redis_url(request: pytest.FixtureRequest) -> str:
    """REDIS_URL for one Redis, then for the Redis Cluster: what a user sets, nothing else."""
    return url_of(request, request.param)


def url_of(request: pytest.FixtureRequest, backend: str) -> str:
    """REDIS_URL of the backend "redis" (one Redis) or "cluster" (starting the cluster if need be)."""
    return request.getfixturevalue("redis_cluster").url if backend == "cluster" else REDIS_URL


def redis_inbox_factory(request: pytest.FixtureRequest, url: str, prefix: str | None = None
                        ) -> Callable[..., RedisInbox]:
    """Each call is another process's view of one shared Redis inbox, on a key prefix of the test's
    own; closed and deleted when the test ends."""
    prefix = prefix or f"parley-test-{uuid.uuid4().hex[:8]}:"
    made: list[RedisInbox] = []

    def make(*, shards: int = 4, visibility_timeout: float = 5.0, max_attempts: int = 3,
             wait_replicas: int = 0) -> RedisInbox:
        inbox = RedisInbox(connect(url), shards=shards, prefix=prefix, dedupe_ttl=60,
                           visibility_timeout=visibility_timeout, max_attempts=max_attempts,
                           wait_replicas=wait_replicas)
        made.append(inbox)
        return inbox

    def finish() -> None:
        for inbox in made:
            inbox.close()
        delete_prefix(connect(url), prefix)

    request.addfinalizer(finish)
    return make


@pytest.fixture
def inbox_prefix() -> str:
    return f"parley-test-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def make_redis_inbox(request: pytest.FixtureRequest, redis_url: str, inbox_prefix: str
                     ) -> Callable[..., RedisInbox]:
    return redis_inbox_factory(request, redis_url, inbox_prefix)
