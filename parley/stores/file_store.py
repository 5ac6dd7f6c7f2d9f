"""Files kept a short while for a platform to fetch (Twilio takes a rep's file from a URL of ours).

A file is kept under a random token that is the whole of its address: 256 bits nobody guesses,
gone after ``seconds``. In Redis every pod serves every file (one hash per file, its expiry set in
the same transaction); embedded, the process keeps them in memory, within a byte budget.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from parley.core.files import FileBody
from parley.stores.redis_topology import Client, unavailable

_TOKEN_BYTES = 32


class MemoryFileStore:
    def __init__(self, *, max_bytes: int = 100_000_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._files: OrderedDict[str, tuple[float, FileBody]] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock
        self._lock = threading.Lock()

    def keep(self, file: FileBody, *, seconds: int, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(_TOKEN_BYTES)
        with self._lock:
            if (replaced := self._files.pop(token, None)) is not None:  # the same file kept again
                self._bytes -= len(replaced[1].data)
            self._files[token] = (self._clock() + seconds, file)
            self._bytes += len(file.data)
            # Oldest first, past the budget or past their time: what no platform will fetch again.
            while self._files and (self._bytes > self._max_bytes or self._expired(next(iter(self._files)))):
                _, (_, dropped) = self._files.popitem(last=False)
                self._bytes -= len(dropped.data)
        return token

    def get(self, token: str) -> FileBody | None:
        with self._lock:
            kept = self._files.get(token)
        if kept is None or kept[0] < self._clock():
            return None
        return kept[1]

    def has(self, token: str) -> bool:
        return self.get(token) is not None

    def _expired(self, token: str) -> bool:
        return self._files[token][0] < self._clock()


class RedisFileStore:
    def __init__(self, client: Client, *, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}file:"

    def keep(self, file: FileBody, *, seconds: int, token: str | None = None) -> str:
        token = token or secrets.token_urlsafe(_TOKEN_BYTES)
        key = self._prefix + token
        with unavailable("keeping a file for the platform to fetch"):
            pipeline = self._client.pipeline(transaction=True)
            pipeline.hset(key, mapping={"name": file.name, "type": file.content_type, "data": file.data})
            pipeline.expire(key, seconds)
            pipeline.execute()
        return token

    def has(self, token: str) -> bool:
        with unavailable("looking up a kept file"):
            return bool(self._client.exists(self._prefix + token))

    def get(self, token: str) -> FileBody | None:
        with unavailable("reading a kept file"):
            fields = self._client.hgetall(self._prefix + token)
        if not fields or b"data" not in fields:
            return None
        return FileBody(name=fields[b"name"].decode("utf-8"), content_type=fields[b"type"].decode("utf-8"),
                        data=bytes(fields[b"data"]))
