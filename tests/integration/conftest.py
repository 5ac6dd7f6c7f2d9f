"""Fixtures the integration modules share."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from parley.stores.redis import connect
from parley.stores.redis_inbox import RedisInbox
from tests.integration.redis_processes import REDIS_URL, delete_prefix


@pytest.fixture
def inbox_prefix() -> Iterator[str]:
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)


@pytest.fixture
def make_redis_inbox(inbox_prefix: str) -> Iterator[Callable[..., RedisInbox]]:
    """Each call is another process's view of one shared Redis inbox."""
    made: list[RedisInbox] = []

    def make(*, shards: int = 4, visibility_timeout: float = 5.0, max_attempts: int = 3) -> RedisInbox:
        inbox = RedisInbox(connect(REDIS_URL), shards=shards, prefix=inbox_prefix, dedupe_ttl=60,
                           visibility_timeout=visibility_timeout, max_attempts=max_attempts)
        made.append(inbox)
        return inbox

    yield make
    for inbox in made:
        inbox.close()
