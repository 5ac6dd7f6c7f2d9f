"""LLM answers under load: 1,000 customer messages against a Chat Completions stub with ~800 ms latency.

The stub runs in its own process (its CPU is not ours). Messages enter the inbox as widget messages
at a steady rate and leave through the widget adapter's mailbox, which is what the widget's
Server-Sent Events endpoint reads; the bench times the first streamed token and the finished reply
there. The workload is FAQ-heavy: popular questions repeat (Zipf), others are paraphrases from the
knowledge base, some are follow-ups that lean on the conversation, a few are off-topic.

Prints: API calls saved by the cache, p50/p99 time to first token and to the full answer, Parley's
overhead beyond the stub, and the sustained answered messages/s.

    .venv/bin/python bench/llm.py [--messages 1000] [--rate 250] [--workers 256] [--latency 0.8]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parley import logs  # noqa: E402
from parley.core.envelope import Envelope, Reply  # noqa: E402
from parley.stores.knowledge import load_articles  # noqa: E402
from parley.settings import load_settings  # noqa: E402
from parley.wiring import build_services  # noqa: E402

FOLLOW_UPS = ("and how long does that take?", "what if that doesn't work?", "does it cost anything?")
OFF_TOPIC = ("what's the weather like in Paris?", "tell me a joke about penguins",
             "who won the football last night?")


@dataclass
class Timings:
    """First token and finished reply per message, stamped where the widget's stream reads them."""

    sent: dict[str, float] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    first_token: dict[str, float] = field(default_factory=dict)
    done: dict[str, float] = field(default_factory=dict)
    replies: dict[str, Reply] = field(default_factory=dict)
    all_done: threading.Event = field(default_factory=threading.Event)
    expected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class TimedMailbox:
    """Wraps the widget's mailbox and notes when each message's token and reply events appear."""

    def __init__(self, inner: object, timings: Timings) -> None:
        self._inner = inner
        self._t = timings

    def publish_token(self, conversation_id: str, reply_id: str, text: str) -> None:
        now = time.perf_counter()
        self._t.first_token.setdefault(reply_id, now)
        self._inner.publish_token(conversation_id, reply_id, text)  # type: ignore[attr-defined]

    def publish(self, conversation_id: str, replies: list[Reply]) -> None:
        now = time.perf_counter()
        self._inner.publish(conversation_id, replies)  # type: ignore[attr-defined]
        with self._t.lock:
            self._t.done[replies[0].in_reply_to or ""] = now
            self._t.replies[replies[0].in_reply_to or ""] = replies[0]
            self._t.first_token.setdefault(replies[0].reply_id, now)
            if len(self._t.done) >= self._t.expected:
                self._t.all_done.set()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def workload(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(conversation id, text) in sending order."""
    rng = random.Random(seed)
    articles = load_articles(ROOT / "config" / "knowledge")
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(articles))]  # a few FAQs dominate
    rng.shuffle(articles)
    messages: list[tuple[str, str]] = []
    open_conversations: list[str] = []
    while len(messages) < count:
        roll = rng.random()
        if roll < 0.10 and open_conversations:
            messages.append((rng.choice(open_conversations), rng.choice(FOLLOW_UPS)))
            continue
        conversation = f"bench-{uuid.uuid4().hex[:12]}"
        open_conversations.append(conversation)
        if roll < 0.14:
            messages.append((conversation, rng.choice(OFF_TOPIC)))
            continue
        article = rng.choices(articles, weights)[0]
        phrasings = (article.title, *article.questions)
        # Mostly the common wording (repeats); sometimes a paraphrase or a different capitalisation.
        text = article.title if rng.random() < 0.6 else rng.choice(phrasings)
        messages.append((conversation, text.lower() if rng.random() < 0.2 else text))
    return messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stub(latency: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tests.stubs.openai_stub", "--port", str(port),
                                "--latency", str(latency)], cwd=ROOT, stdout=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the stub did not start")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(args: argparse.Namespace, base_url: str, data_dir: str) -> None:
    environ = {"OPENAI_API_KEY": "sk-bench", "OPENAI_BASE_URL": base_url, "PARLEY_DATA_DIR": data_dir,
               "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"), **_optional("DATABASE_URL", args.database_url),
               **_optional("REDIS_URL", args.redis_url)}
    settings = load_settings(ROOT / "config" / "parley.yaml", environ=environ)
    settings = settings.model_copy(update={
        "server": settings.server.model_copy(update={"workers": args.workers}),
        "llm": settings.llm.model_copy(update={"max_connections": args.workers})})
    logs.configure(level=args.log_level)
    services = build_services(settings)
    timings = Timings(expected=args.messages)
    widget = services.adapters["widget"]
    widget.mailbox = TimedMailbox(widget.mailbox, timings)  # type: ignore[attr-defined]
    record_inbound = services.log.record_inbound

    def started(envelope: Envelope) -> bool:  # a worker's first step: the message left the queue
        timings.started.setdefault(envelope.message_id, time.perf_counter())
        return record_inbound(envelope)

    services.log.record_inbound = started  # type: ignore[method-assign]
    messages = workload(args.messages)
    services.workers.start()
    cpu_before, started = time.process_time(), time.perf_counter()
    for n, (conversation, text) in enumerate(messages):
        target = started + n / args.rate
        if (pause := target - time.perf_counter()) > 0:
            time.sleep(pause)
        message_id = uuid.uuid4().hex
        timings.sent[f"{conversation}:{message_id}"] = time.perf_counter()
        services.inbox.put(Envelope(channel="widget", conversation_id=conversation,
                                    message_id=f"{conversation}:{message_id}", sender=conversation, text=text))
    if not timings.all_done.wait(timeout=120):
        print(f"only {len(timings.done)} of {args.messages} answered within 120 s")
    with timings.lock:
        timings.done = dict(timings.done)
    finished = max(timings.done.values())
    cpu = time.process_time() - cpu_before
    services.close()
    report(args, timings, finished - started, cpu)


def report(args: argparse.Namespace, timings: Timings, elapsed: float, cpu: float) -> None:
    answered = list(timings.done)
    engines: dict[str, int] = {}
    for m in answered:
        engines[timings.replies[m].meta.engine] = engines.get(timings.replies[m].meta.engine, 0) + 1
    cached = sum(timings.replies[m].meta.cached for m in answered)
    called = [m for m in answered if timings.replies[m].meta.prompt_tokens is not None]
    # Overhead: from a worker taking the message to the reply in the mailbox, less the stub's time.
    overhead = [timings.done[m] - timings.started[m] - args.latency for m in called]
    queued = [timings.started[m] - timings.sent[m] for m in answered]
    print(f"messages            {len(answered)} of {args.messages}, sent at {args.rate:.0f}/s, "
          f"{args.workers} workers, stub latency {args.latency * 1000:.0f} ms")
    print(f"engines             {engines}")
    print(f"cache               {cached} of {cached + len(called)} LLM answers from the cache: "
          f"{cached} API calls saved ({cached / max(cached + len(called), 1):.0%} hit rate)")
    for label, chosen in (("all messages", answered), ("API-answered", called)):
        if not chosen:
            continue
        firsts = [timings.first_token[timings.replies[m].reply_id] - timings.sent[m] for m in chosen]
        fulls = [timings.done[m] - timings.sent[m] for m in chosen]
        print(f"{label:<20}first token p50 {percentile(firsts, .5) * 1000:.0f} ms  p99 "
              f"{percentile(firsts, .99) * 1000:.0f} ms | full answer p50 {percentile(fulls, .5) * 1000:.0f} ms"
              f"  p99 {percentile(fulls, .99) * 1000:.0f} ms")
    print(f"waiting in the inbox p50 {percentile(queued, .5) * 1000:.0f} ms  p99 {percentile(queued, .99) * 1000:.0f} ms"
          " (a conversation's messages are answered in order, by one worker at a time)")
    if overhead:
        print(f"overhead beyond the stub's {args.latency * 1000:.0f} ms (API-answered): "
              f"p50 {statistics.median(overhead) * 1000:.1f} ms   p99 {percentile(overhead, .99) * 1000:.1f} ms")
    print(f"CPU per message     {cpu / len(answered) * 1000:.2f} ms (whole process)")
    print(f"sustained           {len(answered) / elapsed:.0f} answered messages/s "
          f"({len(answered)} in {elapsed:.2f} s)")


def _optional(name: str, value: str | None) -> dict[str, str]:
    return {name: value} if value else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=250.0, help="messages sent per second")
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.8)
    parser.add_argument("--log-level", default="ERROR")
    parser.add_argument("--database-url", help="PostgreSQL instead of the embedded SQLite log")
    parser.add_argument("--redis-url", help="Redis inbox, sessions, mailbox and answer cache")
    args = parser.parse_args()
    stub, base_url = start_stub(args.latency)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            run(args, base_url, data_dir)
    finally:
        stub.terminate()
        stub.wait()


if __name__ == "__main__":
    main()
