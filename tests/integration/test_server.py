"""The real product: ``parley serve`` (gunicorn) on a free port, spoken to over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import ROOT

PARLEY = Path(sys.executable).with_name("parley")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# A start loads the embedding model and fits the knowledge model: seconds alone, a minute on a loaded machine.
def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read().decode() if process.stdout else ''}")
        try:
            if requests.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # a busy machine may answer late
            time.sleep(0.1)
    raise AssertionError("server did not become ready")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PARLEY_DATA_DIR": str(tmp_path / "var")}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([str(PARLEY), "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_answers_the_widget_over_http(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, _ = server
    page = requests.get(f"{url}/widget", timeout=5)
    assert page.status_code == 200
    assert "widget.js" in page.text
    answer = requests.post(f"{url}/widget/api/messages", json={"text": "How do I reset my password?"}, timeout=10)
    assert answer.status_code == 200
    assert answer.json()["replies"][0]["sources"][0]["id"] == "reset-password"
    assert answer.headers["Server"].startswith("gunicorn")  # the production server, not Flask's


def test_serve_runs_gunicorn_and_prints_the_url(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, process = server
    process.terminate()
    output = process.communicate(timeout=30)[0].decode()
    assert f"{url}/widget" in output
    assert f"Listening at: {url}" in output


def test_sigterm_stops_the_server_gracefully(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    _, process = server
    process.terminate()
    assert process.wait(timeout=30) == 0
