"""The official OpenAI client, split into several small connection pools.

Before each request, and again when its response closes, the HTTP library's pool checks every idle
connection it holds for a close from the server, one ``poll`` per socket. Under gevent each of those
polls is a trip through the hub, so one pool sized for every worker (hundreds of keep-alive
connections) spent a fifth of an answer's CPU checking sockets that the request never used
(bench/throughput.py with py-spy). The same connections spread over clients of
``CONNECTIONS_PER_CLIENT`` each cost a few checks per request instead (each 14 us under gevent, 2 us
without), and a request takes the client with the fewest requests in flight so that no small pool
fills while another has room. Clients are made when first needed: a quiet process holds one.
"""

from __future__ import annotations

import math
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
import openai

from parley.settings import LlmSettings

CONNECTIONS_PER_CLIENT = 4


def make_client(settings: LlmSettings, *, connections: int | None = None,
                tls: ssl.SSLContext | None = None) -> openai.OpenAI:
    """One official client whose pool keeps ``connections`` (default: the configured maximum) alive."""
    size = connections or settings.max_connections
    limits = httpx2.Limits(max_connections=size, max_keepalive_connections=size)
    http_client = openai.DefaultHttpxClient(limits=limits, verify=tls or httpx2.create_ssl_context())
    return openai.OpenAI(
        api_key=settings.api_key.get_secret_value() if settings.api_key else None,
        base_url=settings.base_url or None, timeout=settings.timeout_seconds,
        max_retries=settings.max_retries, http_client=http_client,
    )


class ClientPool:
    """``llm.max_connections`` connections in all, as clients of ``per_client`` connections each."""

    def __init__(self, settings: LlmSettings, *, per_client: int = CONNECTIONS_PER_CLIENT) -> None:
        count = max(1, math.ceil(settings.max_connections / per_client))
        self._settings = settings
        self._size = math.ceil(settings.max_connections / count)
        # One TLS context for all: loading the CA bundle is most of what a client costs to make.
        self._tls = httpx2.create_ssl_context()
        self._clients: list[openai.OpenAI | None] = [None] * count
        self._in_flight = [0] * count
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def base_url(self) -> str:
        return str(self._client(0).base_url)

    @contextmanager
    def lease(self) -> Iterator[openai.OpenAI]:
        """The least busy client, counted busy until the block (and any stream read in it) ends."""
        with self._lock:
            index = self._in_flight.index(min(self._in_flight))
            self._in_flight[index] += 1
            client = self._client(index)
        try:
            yield client
        finally:
            with self._lock:
                self._in_flight[index] -= 1

    def close(self) -> None:
        for client in self._clients:
            if client is not None:
                client.close()

    def _client(self, index: int) -> openai.OpenAI:
        client = self._clients[index]
        if client is None:
            client = self._clients[index] = make_client(self._settings, connections=self._size, tls=self._tls)
        return client
