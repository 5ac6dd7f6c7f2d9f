"""Real processes for the scale-out tests: `parley serve` / `parley worker`, a Redis of our own,
a PostgreSQL database of our own, and signed Slack events (Events API DM payloads)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
import yaml
from slack_sdk.signature import SignatureVerifier

from tests.conftest import CONFIG, POSTGRES_ADMIN, ROOT
from tests.integration.test_server import PARLEY, free_port

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-fake_0000000000-0000000000000-redis0scale0out0tests00"
PAYLOAD = ROOT / "tests" / "payloads" / "slack" / "message_im.json"
REDIS_URL = "redis://127.0.0.1:6379/0"


def write_config(directory: Path, **storage: Any) -> Path:
    """The sample YAML with inbox settings of the test's own (a key prefix, a short visibility timeout)."""
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["storage"].update(storage)
    # These tests are about delivery, not the per-sender throttle: a platform retrying through an
    # outage would otherwise count against its sender.
    config["limits"].update(messages_per_minute_per_sender=10_000, messages_per_minute_per_conversation=10_000)
    path = directory / "parley.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def parley_env(config: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PARLEY_CONFIG": str(config), "PARLEY_DATA_DIR": str(data_dir),
           "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"), "SLACK_BOT_TOKEN": BOT_TOKEN,
           "SLACK_SIGNING_SECRET": SIGNING_SECRET, **extra}
    return env


class Parley:
    """A `parley ...` subprocess whose output goes to a file (a full pipe would stall it)."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen([str(PARLEY), *args], cwd=ROOT, env=dict(env), stdout=self._out,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


def serve(env: Mapping[str, str], log: Path, *args: str) -> tuple[str, Parley]:
    port = free_port()
    server = Parley(["serve", "--port", str(port), *args], env, log)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if server.process.poll() is not None:
            raise AssertionError(f"parley serve exited:\n{server.output()[-3000:]}")
        return _ready(url)

    # A start loads the embedding model: seconds alone, past 40 s on a loaded machine (as test_server's wait).
    try:
        wait_until(up, timeout=90, what=f"parley serve on {url}")
    except AssertionError:
        server.stop()  # the caller never gets it to stop: a server left running outlives the test run
        raise
    return url, server


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # still booting
        return False


def wait_until(condition: Any, *, timeout: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def slack_event(*, channel: str, user: str, text: str, event_id: str) -> bytes:
    body = json.loads(PAYLOAD.read_text(encoding="utf-8"))
    body["event_id"] = event_id
    body["event"].update(channel=channel, user=user, text=text, client_msg_id=str(uuid.uuid4()),
                         ts=f"{time.time():.6f}")
    body["event"]["blocks"][0]["elements"][0]["elements"][0]["text"] = text
    return json.dumps(body).encode()


def post_slack(url: str, body: bytes, *, retry: int = 0, timeout: float = 5) -> requests.Response:
    """One delivery as Slack makes it: signed now, with Slack's retry headers on a redelivery."""
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
               "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)}
    if retry:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return requests.post(f"{url}/slack/events", data=body, headers=headers, timeout=timeout)


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of this module's own (the shared test database is reset by other tests)."""
    name = f"parley_scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisServer:
    """A redis-server of the test's own on a free port, persisting every write (AOF, fsync always),
    so stopping and starting it loses nothing, as a production Redis must be configured."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        wait_until(lambda: _pings(client), timeout=10, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SHUTDOWN: the AOF is flushed
            self.process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
