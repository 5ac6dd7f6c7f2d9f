"""The answer cache: identical questions against the same knowledge and prompt cost no API call.

The key is the normalised question plus the knowledge-index version and the prompt version, so
editing an article or the persona invalidates every cached answer at once. Questions that lean on
the conversation ("and how much is it?") are never cached: ``needs_context`` says which.
Embedded: an LRU+TTL map in the process (cachetools). Production: Redis, shared by every pod.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import redis
import structlog
from cachetools import TTLCache
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from parley.core.envelope import Source
from parley.core.phrases import fold
from parley.core.sessions import Turn

logger = structlog.get_logger("parley.llm.cache")
# A Redis Cluster's "no node reachable" is not a RedisError.
_REDIS_ERRORS = (redis.RedisError, RedisClusterException)

_REFERRING = frozenset(
    "it its it's that this those these they them their there he she him her one ones also else "
    "same again instead then more other another former latter".split()
)
_FOLLOW_UP = re.compile(r"^(and|but|or|so|what about|how about|why|why not|ok|okay)\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAnswer:
    text: str
    sources: tuple[Source, ...]
    model: str

    def to_json(self) -> str:
        return json.dumps({"text": self.text, "model": self.model,
                           "sources": [s.to_dict() for s in self.sources]})

    @classmethod
    def from_json(cls, data: str | bytes) -> CachedAnswer:
        fields = json.loads(data)
        return cls(text=fields["text"], model=fields["model"],
                   sources=tuple(Source(**source) for source in fields["sources"]))


class AnswerCache(Protocol):
    def get(self, key: str) -> CachedAnswer | None: ...

    def put(self, key: str, answer: CachedAnswer) -> None: ...


def normalise(question: str) -> str:
    return " ".join(re.findall(r"\w+", fold(question)))


def cache_key(question: str, *, knowledge_version: str, prompt_version: str) -> str:
    material = f"{prompt_version}\0{knowledge_version}\0{normalise(question)}"
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def needs_context(question: str, history: Sequence[Turn]) -> bool:
    """True when the answer may depend on earlier turns, so a cached answer could be wrong."""
    if not any(turn.role == "customer" for turn in history):
        return False
    words = normalise(question).split()
    return len(words) <= 3 or bool(_REFERRING.intersection(words)) or bool(_FOLLOW_UP.match(" ".join(words)))


class MemoryAnswerCache:
    """Least recently used entries go first; each lives ``ttl`` seconds."""

    def __init__(self, *, max_entries: int, ttl: float) -> None:
        self._entries: TTLCache[str, CachedAnswer] = TTLCache(maxsize=max_entries, ttl=ttl)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe

    def get(self, key: str) -> CachedAnswer | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._entries[key] = answer


class RedisAnswerCache:
    """Shared by every pod; a Redis failure is a cache miss, never a failed answer."""

    def __init__(self, client: redis.Redis | RedisCluster, *, ttl: int, prefix: str = "parley:") -> None:
        self._redis = client
        self._ttl = ttl
        self._prefix = f"{prefix}llm-cache:"

    def get(self, key: str) -> CachedAnswer | None:
        try:
            data = self._redis.get(self._prefix + key)
        except _REDIS_ERRORS as exc:
            logger.warning("llm_cache_unavailable", error=type(exc).__name__)
            return None
        return None if data is None else CachedAnswer.from_json(data)

    def put(self, key: str, answer: CachedAnswer) -> None:
        try:
            self._redis.set(self._prefix + key, answer.to_json(), ex=max(self._ttl, 1))
        except _REDIS_ERRORS as exc:
            logger.warning("llm_cache_unavailable", error=type(exc).__name__)


class InFlight:
    """Lets one worker ask the API for a question while others asking the same thing wait for it.

    Without this, a burst of identical questions (a shipping outage) misses the cache together and
    pays for the same answer many times.
    """

    def __init__(self, wait_seconds: float) -> None:
        self._wait = wait_seconds
        self._flights: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @contextmanager
    def first(self, key: str) -> Iterator[bool]:
        """Yields True for the worker that should call the API, False after waiting for it."""
        with self._lock:
            running = self._flights.get(key)
            if running is None:
                done = self._flights[key] = threading.Event()
        if running is not None:
            running.wait(self._wait)
            yield False
            return
        try:
            yield True
        finally:
            with self._lock:
                del self._flights[key]
            done.set()
