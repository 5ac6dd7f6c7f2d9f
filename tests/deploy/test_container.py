"""The image, built for real and run as Kubernetes runs it.

``deployments/build-image --debian`` builds deployments/Dockerfile with buildah on a Debian bookworm
base made by mmdebstrap (there is no registry here), and the image's own entrypoint and command
(``parley serve``) run in it as its own user, with the image's defaults (two gunicorn processes,
JSON logs) against a Redis and a PostgreSQL database of the test's own, as in the cluster.

Where buildah and mmdebstrap are installed (``./dev test`` installs them). buildah keeps its storage
in the test's temporary directory (vfs, chroot isolation: no daemon, no overlay mounts, nothing in
/var/lib/containers); the Debian base and the wheelhouse stay in ~/.cache/parley-container under
the content hash of what made them, so a warm run downloads nothing and a cold one makes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.conftest import ROOT
from tests.integration.redis_processes import RedisServer, postgres_database
from tests.integration.test_server import free_port

pytestmark = pytest.mark.skipif(shutil.which("buildah") is None or shutil.which("mmdebstrap") is None,
                                reason="needs buildah and mmdebstrap (./dev test installs them with apt)")

BUILD_IMAGE = ROOT / "deployments" / "build-image"
TAG = "localhost/parley:test"
ISOLATION = {"BUILDAH_ISOLATION": "chroot", "STORAGE_DRIVER": "vfs"}


class Buildah:
    """buildah on a storage of its own: vfs in ``root``, chroot isolation."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, **ISOLATION, "TMPDIR": str(root / "tmp")}
        self.options = ["--root", str(root / "storage"), "--runroot", str(root / "run")]

    def command(self, *args: str) -> list[str]:
        return ["buildah", *self.options, *args]

    def __call__(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"buildah {' '.join(args)}:\n{done.stderr[-3000:]}"
        return done.stdout


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    tool = Buildah(tmp_path_factory.mktemp("buildah"))
    (tool.root / "tmp").mkdir()
    try:
        yield tool
    finally:
        subprocess.run(tool.command("rm", "--all"), env=tool.env, capture_output=True, timeout=300)
        shutil.rmtree(tool.root, ignore_errors=True)  # images included: vfs layers are plain folders


@pytest.fixture(scope="module")
def image(buildah: Buildah) -> str:
    built = subprocess.run([str(BUILD_IMAGE), "--debian", "--root", str(buildah.root), TAG], env=buildah.env,
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr[-5000:]
    assert f"built {TAG}" in built.stderr
    return TAG


@pytest.fixture(scope="module")
def container(buildah: Buildah, image: str) -> Iterator[str]:
    name = buildah("from", "--pull=never", "--name", "parley-test-serve", image).strip()
    try:
        yield name
    finally:
        buildah("rm", name)


class Served:
    """`buildah run` of the image's entrypoint and command, and the processes it started."""

    def __init__(self, buildah: Buildah, container: str, env: dict[str, str], log: Path) -> None:
        self.config = json.loads(buildah("inspect", container))["OCIv1"]["config"]
        self.command = [*self.config["Entrypoint"], *self.config["Cmd"]]
        self.env = env
        self.url = f"http://127.0.0.1:{env['PORT']}"
        self.log = log
        settings = [argument for name, value in env.items() for argument in ("--env", f"{name}={value}")]
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                buildah.command("run", "--isolation", "chroot", "--network", "host", *settings, container, "--",
                                *self.command),
                env=buildah.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def parley_processes(self) -> dict[int, dict[str, str]]:
        """pid -> /proc status fields of every process running the image's parley, at any depth."""
        found = {}
        for pid in descendants(self.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # gone meanwhile
                continue
            # The interpreter of the image's virtual environment running its parley script (not
            # buildah's chroot helper, which is given the same arguments).
            if argv[0].startswith(b"/opt/parley/bin/python") and argv[1:2] == [b"/opt/parley/bin/parley"]:
                found[pid] = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        return found

    def master(self) -> int:
        processes = self.parley_processes()
        [pid] = [pid for pid, status in processes.items() if int(status["PPid"]) not in processes]
        return pid

    def wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"parley serve in the image exited:\n{self.output()[-3000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # still starting
                pass
            time.sleep(0.2)
        raise AssertionError(f"parley serve in the image was not ready in {timeout} s:\n{self.output()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to parley, as the kubelet sends the image's STOPSIGNAL; SIGKILL to all that stays."""
        if self.process.poll() is None:
            pids = descendants(self.process.pid)
            try:
                os.kill(self.master(), signal.SIGTERM)
                self.process.wait(timeout=60)
            except (ValueError, subprocess.TimeoutExpired):
                for pid in [self.process.pid, *pids]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.process.wait(timeout=30)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


@pytest.fixture(scope="module")
def served(buildah: Buildah, container: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    redis_server = RedisServer(tmp_path_factory.mktemp("redis"))
    redis_server.start()
    try:
        with postgres_database() as database_url:
            env = {"PORT": str(free_port()), "REDIS_URL": redis_server.url, "DATABASE_URL": database_url}
            server = Served(buildah, container, env, buildah.root / "serve.log")
            try:
                # A first start: migrations, the embedding model, the sample knowledge base embedded.
                server.wait_until_ready(timeout=240)
                yield server
            finally:
                server.stop()
    finally:
        redis_server.stop()


def test_the_image_serves_a_widget_answer_from_the_knowledge_base_as_user_10001(served: Served) -> None:
    assert served.command == ["parley", "serve"]
    assert (served.config["User"], served.config["StopSignal"]) == ("10001:10001", "SIGTERM")
    health = requests.get(f"{served.url}/healthz", timeout=5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert "widget.js" in requests.get(f"{served.url}/widget", timeout=5).text
    answer = requests.post(f"{served.url}/widget/api/messages", json={"text": "How do I reset my password?"},
                           timeout=30)
    assert answer.status_code == 200, answer.text
    [reply] = answer.json()["replies"]
    assert reply["sources"][0]["id"] == "reset-password" and "Forgot password" in reply["text"]
    history = requests.get(f"{served.url}/widget/api/conversations/{answer.json()['conversation_id']}",
                           headers={"X-Parley-Secret": answer.json()["secret"]}, timeout=5).json()
    assert [message["direction"] for message in history["messages"]] == ["in", "out"]
    # The gunicorn master and its PARLEY_PROCESSES=2 workers: all of them uid and gid 10001.
    processes = served.parley_processes()
    assert len(processes) == 3, processes
    for status in processes.values():
        assert status["Uid"].split() == ["10001"] * 4 and status["Gid"].split() == ["10001"] * 4


def test_the_conversation_is_logged_in_postgresql_and_the_logs_are_json(served: Served) -> None:
    requests.post(f"{served.url}/widget/api/messages", json={"text": "how long does delivery take"}, timeout=30)
    readiness = requests.get(f"{served.url}/readyz", timeout=5)
    assert readiness.status_code == 200
    with psycopg.connect(served.env["DATABASE_URL"]) as connection:
        texts = [row[0] for row in connection.execute("SELECT text FROM message WHERE direction = 'in'")]
    assert "how long does delivery take" in texts
    lines = [line for line in served.output().splitlines() if line.startswith("{")]
    assert {"message_answered", "knowledge_indexed"} <= {json.loads(line).get("event") for line in lines}


def test_sigterm_stops_the_image_gracefully(served: Served) -> None:
    """Last in the module: it stops the server the others used."""
    os.kill(served.master(), signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0, served.output()[-3000:]
    assert served.parley_processes() == {}
