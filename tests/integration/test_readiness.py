"""``/readyz`` fails while Redis or SQL is unreachable and recovers by itself when they are back.

The outage is real: the app reaches Redis and PostgreSQL through a TCP relay the test cuts (closing
the listener and every open connection) and then restores on the same port.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from parley.webhooks.app import create_app
from parley.settings import load_settings
from tests.conftest import ROOT
from tests.integration.redis_processes import delete_prefix, wait_until, write_config

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(60)]


class Relay:
    """A TCP relay on a fixed loopback port that can be cut and restored, like a network outage."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port))
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def relays() -> Iterator[dict[str, Relay]]:
    relays = {"redis": Relay(6379), "sql": Relay(5432)}
    yield relays
    for relay in relays.values():
        relay.cut()


@pytest.fixture
def app(tmp_path: Path, relays: dict[str, Relay], postgres_url: str) -> Iterator[Flask]:
    prefix = f"parley-ready-{uuid.uuid4().hex[:8]}:"
    config = write_config(tmp_path, key_prefix=prefix)
    database = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relays['sql'].port}")
    settings = load_settings(config, environ={
        "PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
        "DATABASE_URL": database, "REDIS_URL": f"redis://127.0.0.1:{relays['redis'].port}/0"})
    app = create_app(settings, start_workers=False)
    yield app
    app.extensions["parley"].close()
    delete_prefix(redis.Redis(), prefix)


def ready(client: FlaskClient) -> bool:
    return client.get("/readyz").status_code == 200


@pytest.mark.parametrize("store", ["redis", "sql"])
def test_readiness_fails_while_a_store_is_unreachable_and_recovers(
        app: Flask, relays: dict[str, Relay], store: str) -> None:
    client = app.test_client()
    assert ready(client)
    relays[store].cut()
    down = client.get("/readyz")
    assert down.status_code == 503
    assert down.get_json() == {"error": "temporarily unavailable"}
    assert client.get("/healthz").status_code == 200  # alive: Kubernetes must not restart the pod
    relays[store].restore()
    wait_until(lambda: ready(client), timeout=20, every=0.2, what=f"/readyz after {store} came back")
