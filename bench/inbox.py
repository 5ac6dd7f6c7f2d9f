"""Slack Events API ack throughput and latency: Parley (embedded and Redis inbox) vs a Bolt app.

Drives signed Slack DM events at fixed rates (open loop: each request leaves at its scheduled time,
whatever the previous answers did) against real servers under gunicorn, and prints acked events/s
and p50/p99/max ack latency. The reference peer is a minimal Bolt-for-Python app on slack_bolt's
own Flask adapter that only acks. A loopback Slack API stub takes Parley's answers.

    .venv/bin/python bench/inbox.py [--rates 250,500,1000] [--seconds 5] [--processes 2] [--cluster]
                                    [--only SUBSTRING]
    .venv/bin/python bench/inbox.py --puts 5000     # the ack's store step alone, WAIT on and off

Needs Redis at 127.0.0.1:6379 (a key prefix of its own, deleted afterwards) and slack_bolt
(requirements-dev.txt). ``--cluster`` also starts a local Redis Cluster (3 masters, 3 replicas,
as the tests do) and runs Parley on it with acks waiting for a replica (WAIT 1, the default on a
cluster) and without. Figures depend on the machine: run it on the one you deploy to.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    BIN, SECRET, TOKEN, SlackStats, forget, free_port, redis_cluster, running, signed, slack_stub,
)
from bench.processes import cpu_seconds, pids_listening_on  # noqa: E402


def bolt_app():  # noqa: ANN201 - gunicorn's factory: `gunicorn 'bench.inbox:bolt_app()'`
    """The reference peer: Bolt's documented Flask setup, acking every message event."""
    from flask import Flask, request
    from slack_bolt import App
    from slack_bolt.adapter.flask import SlackRequestHandler

    from slack_sdk import WebClient

    # Its Web API client talks to the loopback stub (auth.test on the first event), as Parley's does.
    client = WebClient(token=TOKEN, base_url=os.environ["SLACK_API_URL"])
    bolt = App(client=client, signing_secret=SECRET, token_verification_enabled=False)

    @bolt.event("message")
    def on_message(ack) -> None:  # noqa: ANN001 - Bolt injects by name
        ack()

    handler = SlackRequestHandler(bolt)
    flask_app = Flask("bolt-peer")
    flask_app.add_url_rule("/slack/events", "events", lambda: handler.handle(request), methods=["POST"])
    flask_app.add_url_rule("/readyz", "readyz", lambda: "ok")
    return flask_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="250,500,1000", help="events per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each run")
    parser.add_argument("--processes", type=int, default=2, help="gunicorn processes (Redis and Bolt)")
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads per process of the Bolt peer")
    parser.add_argument("--log-level", default="WARNING", help="Parley's log level during the runs")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per rate; the one with the median p99 is printed (a shared machine is noisy)")
    parser.add_argument("--cluster", action="store_true", help="also on a local Redis Cluster, WAIT on and off")
    parser.add_argument("--only", default="", help="run only the servers whose name contains this "
                        "(embedded, redis, no-workers, cluster, slack_bolt)")
    parser.add_argument("--puts", type=int, default=0,
                        help="instead: time N RedisInbox.put calls in this process (the ack's Redis part)")
    parser.add_argument("--put-threads", type=int, default=8, help="threads putting at once (--puts)")
    args = parser.parse_args()
    if args.puts:
        time_puts(args)
        return
    rates = [int(rate) for rate in args.rates.split(",")]
    print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per run, median p99 of {args.repeat}; Parley on gunicorn "
          f"gevent, Bolt on gthread with {args.threads} threads per process; Parley log level {args.log_level}")
    print(f"{'server':<44} {'rate':>6} {'acked/s':>8} {'non-2xx':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'answered/s':>10} {'CPU ms':>8} {'load':>5}")
    with slack_stub() as (stub_url, stats), redis_cluster(args.cluster) as cluster_url:
        prefix = f"parley-bench-{uuid.uuid4().hex[:8]}:"
        single = {"REDIS_URL": "redis://127.0.0.1:6379/0"}
        targets = [
            ("parley embedded (1 process, workers in it)", [], 1, {}, {}),
            (f"parley redis ({args.processes} proc, workers in them)", [], args.processes, single, {}),
            (f"parley redis ({args.processes} proc, --no-workers)", ["--no-workers"], args.processes, single, {}),
        ]
        if cluster_url:
            on_cluster = {"REDIS_URL": cluster_url}
            targets += [
                (f"parley cluster ({args.processes} proc, --no-workers, WAIT 1)", ["--no-workers"], args.processes,
                 on_cluster, {}),
                (f"parley cluster ({args.processes} proc, --no-workers, no WAIT)", ["--no-workers"],
                 args.processes, on_cluster, {"redis_wait_replicas": 0}),
            ]
        try:
            for name, extra, processes, env, storage in targets:
                if args.only not in name:
                    continue
                with parley(stub_url, prefix, args, extra, processes, env, storage) as url:
                    drive(url, rates[0], 1.0)  # warm-up (connections, scripts, first imports), not reported
                    for rate in rates:
                        report(name, rate, median_run(url, rate, args, stats))
            if args.only in "slack_bolt":
                with bolt(stub_url, args) as url:
                    drive(url, rates[0], 1.0)  # warm-up, not reported
                    for rate in rates:
                        report(f"slack_bolt Flask adapter ({args.processes} proc, ack only)", rate,
                               median_run(url, rate, args, stats))
        finally:
            forget(prefix, "redis://127.0.0.1:6379/0")
            if cluster_url:
                forget(prefix, cluster_url)


def time_puts(args: argparse.Namespace) -> None:
    """The store step of an ack alone: ``put`` after ``put`` from ``--put-threads`` threads, on one
    Redis and on the cluster with and without WAIT; latency per put and puts per second."""
    from parley.stores.redis import connect
    from parley.stores.redis_inbox import RedisInbox
    sys.path.insert(0, str(ROOT))
    from tests.conftest import make_envelope

    print(f"{os.cpu_count()} CPUs; {args.puts} puts from {args.put_threads} threads per run, "
          f"median p99 of {args.repeat}")
    print(f"{'store':<36} {'puts/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'load':>5}")
    with redis_cluster(True) as cluster_url:
        prefix = f"parley-bench-{uuid.uuid4().hex[:8]}:"
        stores = [("one Redis", "redis://127.0.0.1:6379/0", 0), ("cluster, no WAIT", cluster_url, 0),
                  ("cluster, WAIT 1 (the default)", cluster_url, 1)]
        try:
            for name, url, replicas in stores:
                inbox = RedisInbox(connect(url), prefix=prefix, dedupe_ttl=600, visibility_timeout=30,
                                   max_attempts=3, wait_replicas=replicas)
                def put(number: int, inbox: RedisInbox = inbox) -> None:
                    inbox.put(make_envelope("hello", conversation_id=f"c{number % 500}"))
                for _ in range(200):
                    put(0)  # warm-up: connections, scripts
                runs = sorted((timed(put, args.puts, args.put_threads) for _ in range(args.repeat)),
                              key=lambda run: run["p99"])
                run = runs[len(runs) // 2]
                print(f"{name:<36} {run['per_s']:>8.0f} {run['p50']:>8.2f} {run['p99']:>8.2f} {run['max']:>8.2f} "
                      f"{os.getloadavg()[0]:>5.1f}", flush=True)
        finally:
            forget(prefix, "redis://127.0.0.1:6379/0")
            forget(prefix, cluster_url)


def timed(call: object, count: int, threads_wanted: int) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    numbers = iter(range(count))

    def worker() -> None:
        for number in numbers:
            started = time.perf_counter()
            call(number)  # type: ignore[operator]
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)

    start = time.perf_counter()
    run_all(worker, threads_wanted)
    took = time.perf_counter() - start
    pick = quantiles_ms(latencies)
    return {"per_s": len(latencies) / took, "p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0)}


def run_all(target, count: int) -> None:  # noqa: ANN001 - a thread's target
    """``count`` threads running ``target``, until every one has finished."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def quantiles_ms(latencies: list[float]):  # noqa: ANN201 - a quantile -> milliseconds function
    """Quantiles of latencies in seconds, in milliseconds (nan when there are none)."""
    latencies.sort()
    if not latencies:
        return lambda q: float("nan")
    return lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000


def report(name: str, rate: int, result: dict[str, float]) -> None:
    print(f"{name:<44} {rate:>6} {result['acked_per_s']:>8.0f} {result['failed']:>8.0f} "
          f"{result['p50']:>8.2f} {result['p99']:>8.2f} {result['max']:>8.2f} {result['answered_per_s']:>10.0f} "
          f"{result['cpu_ms']:>8.2f} {os.getloadavg()[0]:>5.1f}",
          flush=True)  # load: the machine's 1-minute load average, to tell a busy machine's figures


def median_run(url: str, rate: int, args: argparse.Namespace, stats: SlackStats) -> dict[str, float]:
    runs = []
    for _ in range(args.repeat):
        before, pids = stats.count(""), pids_listening_on(int(url.rpartition(":")[2]))
        cpu = cpu_seconds(pids)
        run = drive(url, rate, args.seconds)
        cpu = cpu_seconds(pids) - cpu
        # Answers that reached the Slack stub while the events were sent and acked (to this run's
        # customers or to earlier runs' still queued: the inbox answers in order of arrival).
        runs.append({**run, "answered_per_s": (stats.count("") - before) / run["took"],
                     "cpu_ms": cpu / max(1, run["acked"]) * 1000})
    runs.sort(key=lambda run: run["p99"])
    return runs[len(runs) // 2]


def drive(url: str, rate: int, seconds: float) -> dict[str, float]:
    """Send ``rate`` events per second for ``seconds``, each at its scheduled time, on keep-alive
    connections; latency is from the request leaving to the whole response read."""
    host, port = url.removeprefix("http://").split(":")
    total = int(rate * seconds)
    run = uuid.uuid4().hex[:6]
    # One customer per event: the figures are about acking, not about the per-sender throttle.
    requests = [signed(f"Ev{run}{n:07d}", f"D{run}{n:07d}", f"U{run}{n:07d}") for n in range(total)]
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    next_index = iter(range(total))
    start = time.perf_counter() + 0.2

    def sender() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        for index in next_index:  # the iterator is shared: each index is sent once
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body, headers = requests[index]
            sent = time.perf_counter()
            try:
                connection.request("POST", "/slack/events", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = 200 <= response.status < 300
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
                ok = False
            elapsed = time.perf_counter() - sent
            with lock:
                latencies.append(elapsed) if ok else None
                failed[0] += 0 if ok else 1

    run_all(sender, min(64, max(8, rate // 15)))
    took = time.perf_counter() - start
    pick = quantiles_ms(latencies)
    return {"acked_per_s": len(latencies) / took, "acked": len(latencies), "failed": failed[0], "p50": pick(0.50), "p99": pick(0.99),
            "max": pick(1.0), "run": run, "took": took}


@contextmanager
def parley(stub_url: str, prefix: str, args: argparse.Namespace, extra: list[str], processes: int,
           env: dict[str, str], storage: dict[str, object]) -> Iterator[str]:
    data_dir = Path(f"/tmp/parley-bench-{uuid.uuid4().hex[:8]}")
    config = data_dir / "parley.yaml"
    data_dir.mkdir()
    settings = yaml.safe_load((ROOT / "config" / "parley.yaml").read_text(encoding="utf-8"))
    settings["storage"].update(key_prefix=prefix, **storage)
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    environ = {**os.environ, "PARLEY_CONFIG": str(config), "PARLEY_DATA_DIR": str(data_dir),
               "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),  # the copied YAML is elsewhere
               # The knowledge base's vectors, embedded once for every run (a fresh data dir each).
               "PARLEY_CACHE_DIR": os.environ.get("PARLEY_CACHE_DIR", "/tmp/parley-bench-cache"),
               "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": stub_url,
               "PARLEY_LOG_LEVEL": args.log_level, **env}
    environ.pop("DATABASE_URL", None) if "REDIS_URL" not in env else None
    # Migrate first: processes booting together on one fresh SQLite file would race to create it.
    subprocess.run([str(BIN / "parley"), "db", "upgrade"], cwd=ROOT, env=environ, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    command = [str(BIN / "parley"), "serve", "--port", str(port), "--processes", str(processes), *extra]
    with running(command, environ, port) as url:
        yield url


@contextmanager
def bolt(stub_url: str, args: argparse.Namespace) -> Iterator[str]:
    port = free_port()
    command = [str(BIN / "gunicorn"), "--chdir", str(ROOT), "-k", "gthread", "--threads", str(args.threads),
               "-w", str(args.processes), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
               "bench.inbox:bolt_app()"]
    with running(command, {**os.environ, "SLACK_API_URL": stub_url}, port) as url:
        yield url


if __name__ == "__main__":
    main()
