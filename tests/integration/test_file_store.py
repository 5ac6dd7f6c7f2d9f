"""The files kept for a platform to fetch: in Redis (one Redis and a cluster) and in process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from parley.core.files import FileBody
from parley.stores.file_store import MemoryFileStore, RedisFileStore
from parley.stores.redis_topology import connect
from tests.integration.redis_processes import delete_prefix

LABEL = FileBody(name="return-label.png", content_type="image/png", data=b"\x89PNG\r\n\x1a\n" + bytes(range(256)))


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisFileStore]:
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    client = connect(redis_url)
    yield RedisFileStore(client, prefix=prefix)
    delete_prefix(client, prefix)


def test_a_kept_file_comes_back_whole_by_its_token_from_any_process(redis_store: RedisFileStore,
                                                                     redis_url: str) -> None:
    token = redis_store.keep(LABEL, seconds=60)
    assert len(token) >= 40  # 256 random bits: the token is the whole of the file's address
    other_pod = RedisFileStore(connect(redis_url), prefix=redis_store._prefix.removesuffix("file:"))
    assert other_pod.get(token) == LABEL and other_pod.has(token)
    assert redis_store.get("not-a-token") is None and not redis_store.has("not-a-token")
    assert redis_store.keep(LABEL, seconds=60) != token


def test_a_kept_file_expires(redis_store: RedisFileStore, redis_url: str) -> None:
    token = redis_store.keep(LABEL, seconds=60)
    assert 0 < connect(redis_url).ttl(redis_store._prefix + token) <= 60


def test_in_process_files_expire_and_stay_within_their_byte_budget() -> None:
    now = [1000.0]
    store = MemoryFileStore(max_bytes=3 * len(LABEL.data), clock=lambda: now[0])
    first = store.keep(LABEL, seconds=60)
    assert store.get(first) == LABEL and store.has(first)
    now[0] += 61
    assert store.get(first) is None and not store.has(first)
    kept = [store.keep(LABEL, seconds=600) for _ in range(4)]
    assert [store.get(token) is not None for token in kept] == [False, True, True, True]  # oldest dropped
