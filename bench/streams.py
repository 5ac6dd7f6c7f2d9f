"""Open widget panels by the thousand: memory per 1,000 live event streams, Slack acks meanwhile,
and a reply reaching every open panel (several tabs) of its conversation.

Starts `parley serve` (embedded, one process), opens ``--streams`` Server-Sent Events streams over
``--conversations`` widget conversations from a gevent client in a process of its own, sends
signed Slack events while they are open, then posts one widget message per conversation and
counts the panels that saw its reply.

    .venv/bin/python bench/streams.py [--streams 5000] [--conversations 50] [--slack-rate 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import BIN, SECRET, TOKEN, free_port, running, slack_stub  # noqa: E402
from bench.inbox import drive  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=50)
    parser.add_argument("--slack-rate", type=int, default=50, help="signed Slack events/s while streams are open")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket per stream, on both sides
    with slack_stub() as (stub_url, _stats), parley(stub_url) as (url, port):
        worker = worker_pid(port)
        before = rss_mb(worker)
        client = subprocess.Popen([sys.executable, str(Path(__file__).with_name("stream_client.py")), url,
                                   str(args.streams), str(args.conversations)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert client.stdout is not None and client.stdin is not None
        opened = json.loads(client.stdout.readline())
        time.sleep(2)
        during = rss_mb(worker)
        acks = drive(url, args.slack_rate, 10.0)
        client.stdin.write("reply\n")
        client.stdin.flush()
        result = json.loads(client.stdout.readline())
        client.wait(timeout=60)
    print(f"{os.cpu_count()} CPUs; one `parley serve` process (gevent), embedded mode")
    print(f"open streams          {opened['open']} of {args.streams} ({opened['refused']} refused) "
          f"in {opened['seconds']:.1f} s")
    print(f"server RSS            {before:.0f} MB idle -> {during:.0f} MB with the streams open: "
          f"{(during - before) / max(1, opened['open']) * 1000:.1f} MB per 1,000 streams")
    print(f"Slack acks meanwhile  {acks['acked_per_s']:.0f}/s at {args.slack_rate}/s offered, "
          f"p50 {acks['p50']:.1f} ms, p99 {acks['p99']:.1f} ms, {acks['failed']:.0f} failed")
    print(f"reply on every panel  {result['received']} of {result['panels']} panels got their conversation's "
          f"reply live (p50 {result['p50_ms']:.0f} ms, max {result['max_ms']:.0f} ms after the POST)")


def parley(stub_url: str):  # noqa: ANN201 - a context manager from bench.inbox.running
    data_dir = Path(f"/tmp/parley-bench-{uuid.uuid4().hex[:8]}")
    data_dir.mkdir()
    settings = yaml.safe_load((ROOT / "config" / "parley.yaml").read_text(encoding="utf-8"))
    config = data_dir / "parley.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    environ = {**os.environ, "PARLEY_CONFIG": str(config), "PARLEY_DATA_DIR": str(data_dir),
               "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
               "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": stub_url,
               "PARLEY_LOG_LEVEL": "WARNING"}
    for name in ("REDIS_URL", "DATABASE_URL", "OPENAI_API_KEY"):
        environ.pop(name, None)
    port = free_port()
    return _with_port(running([str(BIN / "parley"), "serve", "--port", str(port)], environ, port), port)


class _with_port:  # noqa: N801 - reads as "with parley(...) as (url, port)"
    def __init__(self, inner, port: int) -> None:  # noqa: ANN001
        self._inner, self._port = inner, port

    def __enter__(self) -> tuple[str, int]:
        return self._inner.__enter__(), self._port

    def __exit__(self, *exc: object) -> None:
        self._inner.__exit__(*exc)


def worker_pid(port: int) -> int:
    """The gunicorn worker serving ``port``: the child of the master that listens there."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                status = (entry / "status").read_text()
            except OSError:
                continue
            if str(port).encode() in cmdline and b"serve" in cmdline:
                parent = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid")))
                parent_cmd = Path(f"/proc/{parent}/cmdline").read_bytes() if parent > 1 else b""
                if str(port).encode() in parent_cmd:
                    return int(entry.name)
    raise SystemExit(f"no gunicorn worker for port {port}")


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


if __name__ == "__main__":
    main()
