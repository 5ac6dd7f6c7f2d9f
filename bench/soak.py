"""Soak: mixed signed traffic for every channel at a fixed rate against the real server, for minutes.

`parley serve` (gunicorn) runs with Redis and a PostgreSQL database of its own on loopback; Slack,
Twilio and Telegram deliveries are signed as the platforms sign them, widget messages come as a
browser sends them. Answers go through the official SDKs to loopback stubs of the platform APIs
running in this process, whose arrival times give the answer latency (the widget's request waits
for its answer, so its ack is its answer). Customers come from a fixed pool, so conversations grow
as they do in production.

Prints a line per minute (sent, acknowledged, answered, server RSS), then throughput, p50/p99 ack
and answer latency per channel, counts in / answered / dead-lettered / duplicated / missing, and
whether the server's memory was flat after warm-up.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 20] [--processes 1]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from tests.integration.redis_processes import (  # noqa: E402
    REDIS_URL, delete_prefix, parley_env, post_slack, postgres_database, serve, slack_event, write_config,
)
from tests.stubs.server import StubServer, serving, slack_api, telegram_api, twilio_api  # noqa: E402

QUESTIONS = ("How do I reset my password?", "how long does delivery take", "can I return an item",
             "my payment was declined", "where is my package", "How do I cancel my Acme Plus membership?")
TWILIO_SID, TWILIO_TOKEN = "ACfake0000000000000000000000000050", "soak-twilio-auth-token-0123456789"
TELEGRAM_TOKEN, TELEGRAM_SECRET = "50:AAHsoakTokenXXXXXXXXXXXXXXXXXXXXXXXX", "soak-telegram-secret_0123"
CHANNELS = ("widget", "slack", "twilio", "telegram")


class Tally:
    """What was sent, acknowledged and answered, per channel; answers matched per conversation, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: dict[str, int] = defaultdict(int)
        self.acked: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self.answered: dict[str, int] = defaultdict(int)
        self.duplicates: dict[str, int] = defaultdict(int)
        self.ack_ms: dict[str, list[float]] = defaultdict(list)
        self.answer_ms: dict[str, list[float]] = defaultdict(list)
        self.waiting: dict[str, deque[float]] = defaultdict(deque)  # conversation -> send times

    def acknowledged(self, channel: str, key: str, started: float, status: int, answered: bool) -> None:
        now = time.perf_counter()
        with self.lock:
            if status not in (200, 202):
                self.refused[channel] += 1
                return
            self.acked[channel] += 1
            self.ack_ms[channel].append((now - started) * 1000)
            if answered:  # the widget's request carried its answer
                self.answered[channel] += 1
                self.answer_ms[channel].append((now - started) * 1000)
            else:
                self.waiting[key].append(started)

    def arrived(self, channel: str, key: str, at: float) -> None:
        with self.lock:
            if not self.waiting[key]:
                self.duplicates[channel] += 1
                return
            self.answered[channel] += 1
            self.answer_ms[channel].append((at - self.waiting[key].popleft()) * 1000)


class Customers:
    """Signed requests as each platform (or browser) sends them, from a pool of returning customers."""

    def __init__(self, url: str, pool: int) -> None:
        self.url, self.pool = url, pool
        self.counter = itertools.count(1)
        self.widget_conversations: dict[int, tuple[str, str]] = {}  # customer -> id, secret
        self.run = uuid.uuid4().hex[:6]

    def send(self, channel: str, session: requests.Session, tally: Tally) -> None:
        n = next(self.counter)
        customer, question = n % self.pool, QUESTIONS[n % len(QUESTIONS)]
        send: Callable[[requests.Session, int, int, str], tuple[str, int, bool]] = getattr(self, channel)
        started = time.perf_counter()
        with tally.lock:
            tally.sent[channel] += 1
        try:
            key, status, answered = send(session, n, customer, question)
        except requests.RequestException:
            key, status, answered = "", 599, False
        tally.acknowledged(channel, key, started, status, answered)

    def widget(self, session: requests.Session, n: int, customer: int, question: str) -> tuple[str, int, bool]:
        body: dict[str, str] = {"text": question, "client_message_id": f"m{self.run}{n:010d}"}
        headers = {}
        if customer in self.widget_conversations:
            body["conversation_id"], headers["X-Parley-Secret"] = self.widget_conversations[customer]
        response = session.post(f"{self.url}/widget/api/messages", json=body, headers=headers, timeout=30)
        data = response.json() if response.status_code in (200, 202) else {}
        if "secret" in data:
            self.widget_conversations.setdefault(customer, (data["conversation_id"], data["secret"]))
        return "", response.status_code, bool(data.get("replies"))

    def slack(self, session: requests.Session, n: int, customer: int, question: str) -> tuple[str, int, bool]:
        channel = f"DSOAK{self.run}{customer:05d}"
        body = slack_event(channel=channel, user=f"U{channel}", text=question, event_id=f"Ev{self.run}{n:010d}")
        return channel, post_slack(self.url, body, timeout=30).status_code, False

    def twilio(self, session: requests.Session, n: int, customer: int, question: str) -> tuple[str, int, bool]:
        sender = f"+1555{customer:07d}"
        form = {"From": sender, "To": "+14155550100", "Body": question, "MessageSid": f"SM{self.run}{n:026d}",
                "AccountSid": TWILIO_SID, "NumMedia": "0"}
        url = f"{self.url}/twilio/messages"
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
        response = session.post(url, data=urlencode(form), timeout=30, headers={
            "X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"})
        return sender, response.status_code, False

    def telegram(self, session: requests.Session, n: int, customer: int, question: str) -> tuple[str, int, bool]:
        chat = 7_000_000 + customer
        update = {"update_id": n, "message": {"message_id": n, "date": int(time.time()), "text": question,
                                               "from": {"id": chat, "is_bot": False, "first_name": "Soak"},
                                               "chat": {"id": chat, "type": "private"}}}
        response = session.post(f"{self.url}/telegram/webhook", json=update, timeout=30,
                                headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})
        return str(chat), response.status_code, False


def collect(stubs: dict[str, StubServer], tally: Tally, stop: threading.Event) -> None:
    """Match each answer the stubs received to the oldest unanswered message of its conversation."""
    seen = dict.fromkeys(stubs, 0)
    keys = {"slack": ("chat.postMessage", "channel"), "twilio": ("Messages.json", "To"),
            "telegram": ("sendMessage", "chat_id")}
    while not stop.wait(0.2):
        for channel, stub in stubs.items():
            endpoint, field = keys[channel]
            with stub._lock:
                new = stub.calls[seen[channel]:]
                seen[channel] += len(new)
            for call in new:
                if call.endpoint == endpoint:
                    tally.arrived(channel, str(call.params.get(field)), call.received)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (gunicorn's master and workers)."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(tally: Tally, rss: list[tuple[float, float]], seconds: float, dead: int, warmup: float) -> None:
    print("\nchannel    sent  acked refused answered dup  ack p50/p99 ms   answer p50/p99 ms")
    for channel in CHANNELS:
        print(f"{channel:9} {tally.sent[channel]:6} {tally.acked[channel]:6} {tally.refused[channel]:7} "
              f"{tally.answered[channel]:8} {tally.duplicates[channel]:3}  "
              f"{percentile(tally.ack_ms[channel], .5):6.1f}/{percentile(tally.ack_ms[channel], .99):7.1f}  "
              f"{percentile(tally.answer_ms[channel], .5):8.1f}/{percentile(tally.answer_ms[channel], .99):7.1f}")
    acked, answered = sum(tally.acked.values()), sum(tally.answered.values())
    all_ack = [v for values in tally.ack_ms.values() for v in values]
    all_answer = [v for values in tally.answer_ms.values() for v in values]
    print(f"\nthroughput: {answered / seconds:.1f} answered/s over {seconds / 60:.1f} min")
    print(f"ack p50 {percentile(all_ack, .5):.1f} ms, p99 {percentile(all_ack, .99):.1f} ms; "
          f"answer p50 {percentile(all_answer, .5):.1f} ms, p99 {percentile(all_answer, .99):.1f} ms")
    print(f"in (acknowledged): {acked}  answered: {answered}  dead-lettered: {dead}  "
          f"duplicated: {sum(tally.duplicates.values())}  missing: {acked - answered - dead}")
    steady = [mb for at, mb in rss if at >= warmup]
    if len(steady) >= 4:
        half = len(steady) // 2
        first, last = statistics.mean(steady[:half]), statistics.mean(steady[half:])
        slope = (steady[-1] - steady[0]) / max(1e-9, (rss[-1][0] - warmup) / 60)
        print(f"RSS after {warmup:.0f} s warm-up: first half {first:.1f} MB, second half {last:.1f} MB "
              f"({(last - first) / first * 100:+.1f}%), min {min(steady):.1f} max {max(steady):.1f}, "
              f"end-to-end {slope:+.2f} MB/min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second, all channels together")
    parser.add_argument("--customers", type=int, default=200, help="returning customers per channel")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before memory counts as steady")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the stubs' request lines

    directory = Path(tempfile.mkdtemp(prefix="parley-soak-"))
    prefix = f"parley-soak-{uuid.uuid4().hex[:8]}:"
    config = write_config(directory, key_prefix=prefix)
    settings = yaml.safe_load(config.read_text())
    # All the soak's browsers share one address: its per-address limit is for real crowds of them.
    settings["channels"]["widget"].update(messages_per_minute_per_ip=100_000)
    config.write_text(yaml.safe_dump(settings))
    with serving(slack_api) as slack, serving(twilio_api()) as twilio, serving(telegram_api()) as telegram, \
            postgres_database() as database_url:
        stubs = {"slack": slack, "twilio": twilio, "telegram": telegram}
        env = parley_env(config, directory / "var", REDIS_URL=REDIS_URL, DATABASE_URL=database_url,
                         SLACK_API_URL=slack.url, TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
                         TWILIO_API_URL=twilio.url, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
                         TELEGRAM_SECRET_TOKEN=TELEGRAM_SECRET, TELEGRAM_API_URL=telegram.url,
                         PARLEY_LOG_LEVEL="WARNING")
        url, server = serve(env, directory / "serve.log", "--processes", str(args.processes))
        print(f"parley serve at {url} (pid {server.process.pid}), Redis prefix {prefix}, {database_url}")
        print(f"{args.rate:g} messages/s for {args.minutes:g} min, channels {', '.join(CHANNELS)}; log {directory}")
        tally, stop = Tally(), threading.Event()
        collector = threading.Thread(target=collect, args=(stubs, tally, stop), daemon=True)
        collector.start()
        customers, local = Customers(url, args.customers), threading.local()
        rss: list[tuple[float, float]] = []

        def one(channel: str) -> None:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            customers.send(channel, local.session, tally)

        began = time.perf_counter()
        try:
            with ThreadPoolExecutor(max_workers=64) as pool:
                duration, interval, n = args.minutes * 60, 1.0 / args.rate, 0
                next_sample = 0.0
                while (elapsed := time.perf_counter() - began) < duration:
                    if elapsed >= next_sample:
                        rss.append((elapsed, tree_rss_mb(server.process.pid)))
                        if int(elapsed) % 60 < 10 or next_sample == 0:
                            print(f"  {elapsed / 60:4.1f} min  sent {sum(tally.sent.values()):6}  "
                                  f"acked {sum(tally.acked.values()):6}  answered {sum(tally.answered.values()):6}  "
                                  f"RSS {rss[-1][1]:7.1f} MB", flush=True)
                        next_sample += 10.0
                    pool.submit(one, CHANNELS[n % len(CHANNELS)])
                    n += 1
                    time.sleep(max(0.0, began + n * interval - time.perf_counter()))
            seconds = time.perf_counter() - began
            deadline = time.monotonic() + 60  # let the last answers arrive
            while time.monotonic() < deadline and sum(tally.acked.values()) > sum(tally.answered.values()):
                time.sleep(0.5)
            time.sleep(1.0)
            dead = redis.Redis.from_url(REDIS_URL).xlen(f"{prefix}inbox:dead")
            report(tally, rss, seconds, dead, args.warmup)
        finally:
            stop.set()
            server.stop()
            delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)


if __name__ == "__main__":
    main()
