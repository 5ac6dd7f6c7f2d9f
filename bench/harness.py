"""What the Slack benchmarks share: the servers they start (Parley's peers, a Slack API stub, a
local Redis Cluster) and the signed Slack events they send."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-fake_0000000000-0000000000000-benchmark0000000000000"
PAYLOAD = ROOT / "tests" / "payloads" / "slack" / "message_im.json"
BIN = Path(sys.executable).parent



def signed(event_id: str, channel: str, user: str) -> tuple[bytes, dict[str, str]]:
    from slack_sdk.signature import SignatureVerifier

    body = json.loads(PAYLOAD.read_text(encoding="utf-8"))
    body["event_id"] = event_id
    body["event"].update(channel=channel, user=user, ts=f"{time.time():.6f}")
    data = json.dumps(body).encode()
    stamp = str(int(time.time()))
    return data, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=data)}


@contextmanager
def running(command: list[str], environ: dict[str, str], port: int) -> Iterator[str]:
    log = open(f"/tmp/parley-bench-{port}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # a loaded machine embeds the knowledge base slowly
        while not ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[0]} did not start; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def ready(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


class SlackStats:
    """Reads what the Slack stub received: when each channel got its first chat.postMessage."""

    def __init__(self, url: str) -> None:
        self._host, self._port = url.removeprefix("http://").split("/")[0].split(":")

    def arrivals(self, run: str) -> dict[str, float]:
        connection = http.client.HTTPConnection(self._host, int(self._port), timeout=10)
        connection.request("GET", f"/stats?run={run}")
        return json.loads(connection.getresponse().read())

    def count(self, run: str) -> int:
        return len(self.arrivals(run))


@contextmanager
def slack_stub() -> Iterator[tuple[str, SlackStats]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("slack_stub.py")), str(port)],
                               cwd=ROOT)
    url = f"http://127.0.0.1:{port}/api/"
    try:
        deadline = time.monotonic() + 20
        while not ready(f"http://127.0.0.1:{port}"):
            if time.monotonic() > deadline:
                raise SystemExit("the Slack stub did not start")
            time.sleep(0.1)
        yield url, SlackStats(url)
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def redis_cluster(wanted: bool) -> Iterator[str | None]:
    """A local Redis Cluster (the tests' own: 3 masters, 3 replicas on loopback), or None."""
    if not wanted:
        yield None
        return
    import tempfile

    sys.path.insert(0, str(ROOT))
    from tests.support.redis_cluster import LocalRedisCluster

    with tempfile.TemporaryDirectory(prefix="parley-bench-cluster-") as directory:
        cluster = LocalRedisCluster(Path(directory))
        try:
            cluster.start()
            yield cluster.url
        finally:
            cluster.stop()


def forget(prefix: str, url: str) -> None:
    from parley.stores.redis import connect

    client = connect(url)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start:start + 1000])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
