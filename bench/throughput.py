"""Answered LLM messages per second, end to end, as a customer on Slack would see them.

Signed Slack DMs from distinct customers, each with a question of its own (no cache hits), are sent
open-loop at ``--rate`` to `parley serve` (the shipped config with Redis and PostgreSQL), whose
OpenAI-compatible stub answers in ``--latency`` seconds; the answers are counted where they land, at
a Slack Web API stub. Each of the three servers runs in a process of its own.

Prints, per run: offered and answered messages/s, answer latency p50/p99 (event sent to
chat.postMessage received), Parley's CPU and Redis commands per answered message (a Redis server
of the bench's own counts them; a script counts once, plus each command it runs), and with ``--slow`` the same for
the other customers while one conversation's LLM calls take 30 s each.

    .venv/bin/python bench/throughput.py [--rate 300] [--seconds 20] [--processes 1,2] [--workers 256]
    .venv/bin/python bench/throughput.py --processes 2 --workers 16 --rate 60   # the 1.7x check
    .venv/bin/python bench/throughput.py --processes 1 --rate 50 --slow          # head-of-line check
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.processes import cpu_seconds, pids_listening_on  # noqa: E402
from bench.harness import BIN, SECRET, TOKEN, SlackStats, free_port, running, signed, slack_stub  # noqa: E402
from tests.integration.redis_processes import postgres_database  # noqa: E402

SLOW_WORD = "glacier"  # the stub makes any question containing it take --slow-seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300.0, help="messages offered per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long messages are sent")
    parser.add_argument("--processes", default="1,2", help="gunicorn processes per run, comma-separated")
    parser.add_argument("--workers", type=int, default=None, help="server.workers (default: the shipped config)")
    parser.add_argument("--latency", type=float, default=0.8, help="the LLM stub's answer time")
    parser.add_argument("--slow", action="store_true",
                        help="one customer's questions take --slow-seconds each at the LLM")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    parser.add_argument("--redis-detail", action="store_true", help="print the Redis commands run, by name")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; LLM stub {args.latency * 1000:.0f} ms; {args.seconds:g} s at "
          f"{args.rate:g} msg/s offered; workers {args.workers or 'as shipped'}")
    print(f"{'processes':>9} {'offered/s':>10} {'answered/s':>11} {'answered':>9} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'CPU ms/msg':>11} {'Redis/msg':>10} {'load':>5}")
    with openai_stub(args) as llm_url, slack_stub() as (slack_url, stats), \
            postgres_database() as database_url, private_redis() as redis_url:
        for processes in (int(p) for p in args.processes.split(",")):
            prefix = f"parley-bench-{uuid.uuid4().hex[:8]}:"
            with parley(prefix, processes, args, llm_url=llm_url, slack_url=slack_url,
                        database_url=database_url, redis_url=redis_url) as (url, pids):
                warm_up(url, stats)
                report(processes, args, measure(url, pids, stats, args, redis_url))


def measure(url: str, pids: list[int], stats: SlackStats, args: argparse.Namespace,
            redis_url: str) -> dict[str, float]:
    run = uuid.uuid4().hex[:6]
    total = int(args.rate * args.seconds)
    slow_channel = f"DSLOW{run}"
    events = []
    for n in range(total):
        # Every customer different, every question different: no cache hit, no per-sender throttle.
        if args.slow and n % 50 == 0:
            events.append((slow_channel, f"Ev{run}s{n:06d}", f"my {SLOW_WORD} order {n} never came"))
        else:
            events.append((f"D{run}{n:06d}", f"Ev{run}{n:06d}", f"How do I reset my password? ref {run}-{n}"))
    bodies = {event_id: signed_with(event_id, channel, text) for channel, event_id, text in events}
    cpu_before, commands_before = cpu_seconds(pids), redis_commands(redis_url)
    sent = drive(url, [(channel, bodies[event_id]) for channel, event_id, _ in events], args.rate)
    fast = {channel for channel, _, _ in events if channel != slow_channel}
    deadline = time.monotonic() + args.seconds + 60
    while stats.count(run) < len(fast) and time.monotonic() < deadline:
        time.sleep(0.5)
    cpu, commands = cpu_seconds(pids) - cpu_before, redis_commands(redis_url) - commands_before
    if args.redis_detail:
        totals = redis.Redis.from_url(redis_url).info("commandstats")
        print("  Redis commands so far:", ", ".join(f"{name.removeprefix('cmdstat_')} {entry['calls']}" for name, entry
                                                   in sorted(totals.items(), key=lambda item: -item[1]["calls"])))
    arrivals = stats.arrivals(run)
    latencies = sorted(arrivals[channel] - sent[channel] for channel in fast if channel in arrivals)
    first, last = min(sent.values()), max(arrivals[c] for c in fast if c in arrivals)
    pick = (lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000)
    return {"offered": len(sent) / (max(sent.values()) - first), "answered": len(latencies),
            "answered_per_s": len(latencies) / (last - first), "p50": pick(0.5), "p99": pick(0.99),
            "cpu_ms": cpu / max(1, len(latencies)) * 1000, "redis": commands / max(1, len(latencies))}


def report(processes: int, args: argparse.Namespace, result: dict[str, float]) -> None:
    print(f"{processes:>9} {result['offered']:>10.0f} {result['answered_per_s']:>11.1f} {result['answered']:>9.0f} "
          f"{result['p50']:>8.0f} {result['p99']:>8.0f} {result['cpu_ms']:>11.2f} {result['redis']:>10.1f} "
          f"{os.getloadavg()[0]:>5.1f}",
          flush=True)


def drive(url: str, events: list[tuple[str, tuple[bytes, dict[str, str]]]], rate: float) -> dict[str, float]:
    """Open loop: each event leaves at its scheduled time; returns when each customer's first left."""
    host, port = url.removeprefix("http://").split(":")
    sent: dict[str, float] = {}
    lock = threading.Lock()
    indexes = iter(range(len(events)))
    start = time.perf_counter() + 0.2

    def sender() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        for index in indexes:
            channel, (body, headers) = events[index]
            if (delay := start + index / rate - time.perf_counter()) > 0:
                time.sleep(delay)
            stamp = time.time()
            for _attempt in range(2):  # the server closes idle keep-alive connections: retry once
                try:
                    connection.request("POST", "/slack/events", body=body, headers=headers)
                    connection.getresponse().read()
                except (OSError, http.client.HTTPException):
                    connection.close()
                    connection = http.client.HTTPConnection(host, int(port), timeout=10)
                    continue
                with lock:
                    sent.setdefault(channel, stamp)
                break

    threads = [threading.Thread(target=sender) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def signed_with(event_id: str, channel: str, text: str) -> tuple[bytes, dict[str, str]]:
    body, _ = signed(event_id, channel, "U" + channel[1:])
    payload = json.loads(body)
    payload["event"]["text"] = text
    data = json.dumps(payload).encode()
    return signed_body(data)


def signed_body(data: bytes) -> tuple[bytes, dict[str, str]]:
    from slack_sdk.signature import SignatureVerifier

    stamp = str(int(time.time()))
    return data, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=data)}


def warm_up(url: str, stats: SlackStats) -> None:
    """A few answers first: connections, scripts and imports are not what is measured."""
    run = uuid.uuid4().hex[:6]
    events = [(f"D{run}w{n}", signed_with(f"Ev{run}w{n}", f"D{run}w{n}", f"warm up {run} {n}")) for n in range(20)]
    drive(url, events, 20.0)
    deadline = time.monotonic() + 30
    while stats.count(run) < 20 and time.monotonic() < deadline:
        time.sleep(0.2)


@contextmanager
def openai_stub(args: argparse.Namespace) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.stubs.openai_stub", "--port", str(port), "--gevent",
                                "--latency", str(args.latency), "--slow-word", SLOW_WORD,
                                "--slow-seconds", str(args.slow_seconds)], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the bench's own, so its command counts are Parley's alone."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def redis_commands(url: str) -> int:
    """Commands the server has run (a script counts once, with the commands it ran inside)."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(entry["calls"]) for name, entry in stats.items() if name != "cmdstat_info")


@contextmanager
def parley(prefix: str, processes: int, args: argparse.Namespace, *, llm_url: str, slack_url: str,
           database_url: str, redis_url: str) -> Iterator[tuple[str, list[int]]]:
    data_dir = Path(f"/tmp/parley-bench-{uuid.uuid4().hex[:8]}")
    data_dir.mkdir()
    settings = yaml.safe_load((ROOT / "config" / "parley.yaml").read_text(encoding="utf-8"))
    settings["storage"]["key_prefix"] = prefix
    if args.workers:
        settings["server"]["workers"] = args.workers
    config = data_dir / "parley.yaml"
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    environ = {**os.environ, "PARLEY_CONFIG": str(config), "PARLEY_DATA_DIR": str(data_dir),
               "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),  # the copied YAML is elsewhere
               "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack_url,
               "OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": llm_url, "PARLEY_LOG_LEVEL": "WARNING",
               "REDIS_URL": redis_url, "DATABASE_URL": database_url}
    subprocess.run([str(BIN / "parley"), "db", "upgrade"], cwd=ROOT, env=environ, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    command = [str(BIN / "parley"), "serve", "--port", str(port), "--processes", str(processes)]
    with running(command, environ, port) as url:
        yield url, pids_listening_on(port)


if __name__ == "__main__":
    main()
