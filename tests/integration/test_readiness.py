"""``/readyz`` fails while Redis or SQL is unreachable and recovers by itself when they are back.

The outage is real: the app reaches Redis and PostgreSQL through a TCP relay the test cuts (closing
every open connection and hanging up on new ones) and then restores on the same port.
"""

from __future__ import annotations

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
from tests.support.relay import Relay

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(60)]


@pytest.fixture
def relays() -> Iterator[dict[str, Relay]]:
    relays = {"redis": Relay(6379), "sql": Relay(5432)}
    yield relays
    for relay in relays.values():
        relay.close()


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
