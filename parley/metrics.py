"""Prometheus metrics: what ``/metrics`` exports, and the few calls the pipeline makes to count.

One ``Metrics`` per process, built by ``wiring.build_services`` on its own registry (tests build as
many as they like). Under gunicorn with several worker processes, set ``PROMETHEUS_MULTIPROC_DIR``
(the image does): every process writes its values to files there and ``/metrics`` sums them, so a
scrape sees the whole pod whichever process answers it. ``parley serve`` empties the directory at
start and marks exited workers dead.

Inbox depth and dead letters are read from the inbox when scraped (``BacklogCollector``), not
counted: with Redis they are the same for every pod, which is what the HPA's External metric wants.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from prometheus_client import (
    CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server,
)
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from parley.core.envelope import Envelope, Reply
from parley.errors import Unavailable

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Slack gives up after 3 s; anything near that is an incident.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
# What the customer waits, message to answer: seconds for the offline engine, longer for an LLM.
ANSWER_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# Handoff transitions a rep's action makes (``parley.core.handoff``) and the event each counts as.
HANDOFF_EVENTS = {"request": "opened", "claim": "claimed", "resolve": "resolved", "hand_back": "handed_back"}
BACKLOG = ("parley_inbox_depth", "parley_dead_letters")


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    registry: CollectorRegistry
    messages_in: Counter
    duplicates: Counter
    messages_out: Counter
    ack_seconds: Histogram
    answer_seconds: Histogram
    answers: Counter
    llm_tokens: Counter
    handoffs: Counter
    errors: Counter
    in_flight: Gauge
    capacity: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None) -> Metrics:
        registry = registry or CollectorRegistry()
        if os.environ.get(MULTIPROC_ENV):  # e.g. `parley worker` in the image: no serve emptied it
            Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)

        def counter(name: str, doc: str, labels: Sequence[str]) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        return cls(
            registry=registry,
            messages_in=counter("parley_messages_in", "Customer messages stored in the inbox", ["channel"]),
            duplicates=counter("parley_messages_duplicate",
                               "Platform retries of a message already stored (deduplicated)", ["channel"]),
            messages_out=counter("parley_messages_out", "Replies delivered to a channel", ["channel"]),
            ack_seconds=Histogram("parley_ack_seconds",
                                  "Webhook request to envelope durably stored (the platform's ack)",
                                  ["channel"], buckets=ACK_BUCKETS, registry=registry),
            answer_seconds=Histogram("parley_answer_seconds",
                                     "Customer message timestamp to its replies delivered",
                                     ["channel"], buckets=ANSWER_BUCKETS, registry=registry),
            answers=counter("parley_answers", "Answers by the engine that wrote them, and cache hits",
                            ["engine", "cached"]),
            llm_tokens=counter("parley_llm_tokens", "Tokens billed by the LLM endpoint", ["kind"]),
            handoffs=counter("parley_handoffs", "Handoffs opened, claimed, handed back and resolved",
                             ["event"]),
            errors=counter("parley_errors", "Refused requests and failed messages, by error", ["kind"]),
            # Summed over a pod's live processes: what its HPA scales on (with the inbox's lag).
            in_flight=Gauge("parley_messages_in_flight", "Conversations being answered in this pod now",
                            registry=registry, multiprocess_mode="livesum"),
            capacity=Gauge("parley_worker_capacity", "Messages this pod may have in flight (server.workers)",
                           registry=registry, multiprocess_mode="livesum"),
        )

    @staticmethod
    def names() -> set[str]:
        """Every metric family name ``/metrics`` exports (counters as exposed, with ``_total``)."""
        metrics = Metrics.create()
        names = {f"{family.name}_total" if family.type == "counter" else family.name
                 for family in metrics.registry.collect()}
        return names | set(BACKLOG)

    def received(self, channel: str, *, stored: bool) -> None:
        (self.messages_in if stored else self.duplicates).labels(channel=channel).inc()

    def acknowledged(self, channel: str, seconds: float) -> None:
        self.ack_seconds.labels(channel=channel).observe(max(0.0, seconds))

    def answered(self, envelope: Envelope, replies: Sequence[Reply], *, now: float | None = None) -> None:
        """Count one processed message's replies: channel, engine, cache, tokens, and the wait."""
        if envelope.role == "customer":
            waited = (time.time() if now is None else now) - envelope.timestamp
            self.answer_seconds.labels(channel=envelope.channel).observe(max(0.0, waited))
        elif envelope.action in HANDOFF_EVENTS:
            self.handoffs.labels(event=HANDOFF_EVENTS[envelope.action]).inc()
        for reply in replies:
            self.messages_out.labels(channel=reply.channel).inc()
            meta = reply.meta
            if meta.intent == "handoff_request":  # the customer is told a person will take over
                self.handoffs.labels(event="opened").inc()
            self.answers.labels(engine=meta.engine, cached=str(meta.cached).lower()).inc()
            if meta.prompt_tokens:
                self.llm_tokens.labels(kind="prompt").inc(meta.prompt_tokens)
            if meta.completion_tokens:
                self.llm_tokens.labels(kind="completion").inc(meta.completion_tokens)

    def failed(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()


@runtime_checkable
class ReportsStatus(Protocol):
    def status(self) -> dict[str, object]:
        """At least ``queued`` (stored, not yet answered) and ``dead_letters``."""
        ...


class BacklogCollector(Collector):
    """Inbox depth and dead letters, read from the inbox at scrape time."""

    def __init__(self, inbox: ReportsStatus) -> None:
        self._inbox = inbox

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            status = self._inbox.status()
        except Unavailable:  # Redis down: leave these out, keep the scrape (and the error counts) working
            return
        yield GaugeMetricFamily(BACKLOG[0], "Envelopes stored and not yet answered",
                                value=_number(status["queued"]))
        yield GaugeMetricFamily(BACKLOG[1], "Envelopes that failed every attempt (see `parley inbox`)",
                                value=_number(status["dead_letters"]))


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def exposition(metrics: Metrics, inbox: object) -> tuple[bytes, str]:
    """The ``/metrics`` body and content type: this process's metrics, or every process's."""
    # A fresh registry per scrape: concurrent scrapes never share (or double-register) a collector.
    registry = CollectorRegistry()
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(metrics.registry)
    if isinstance(inbox, ReportsStatus):
        registry.register(BacklogCollector(inbox))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def start_metrics_server(metrics: Metrics, inbox: object, *, port: int, host: str = "0.0.0.0") -> Any:
    """``/metrics`` for a process without a web server (``parley worker``): its own values only."""
    registry = CollectorRegistry()
    registry.register(metrics.registry)
    if isinstance(inbox, ReportsStatus):
        registry.register(BacklogCollector(inbox))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def prepare_multiprocess_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Empty ``PROMETHEUS_MULTIPROC_DIR`` before gunicorn forks: old files would count twice."""
    path = environ.get(MULTIPROC_ENV)
    if not path:
        return None
    directory = Path(path)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def mark_worker_dead(pid: int) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges stop counting (counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)

