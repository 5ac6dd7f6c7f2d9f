"""The worker side of the pipeline: inbox -> dialogue -> conversation log -> outbox -> channel.

``process`` is the whole of one message's life after the webhook acknowledged it. It is safe to run
twice for the same envelope (a worker retried or died): the log keeps the first replies and the send
ledger lets each reply out once.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from parley.channels.base import ChannelAdapter, prepared
from parley.core.dialogue import Dialogue
from parley.core.envelope import Envelope, Reply, reply_id
from parley.core.handoff import DESK
from parley.core.inbox import Delivery, Inbox
from parley.core.log import ConversationLog
from parley.errors import ParleyError, Unavailable, UpstreamError
from parley.metrics import Metrics

logger = structlog.get_logger("parley.worker")

# How long a platform's transient failures (429, 5xx, network) are waited out in place before
# they count as a failed attempt: a short outage never dead-letters a message.
TRANSIENT_BUDGET = 300.0


class SendLedger(Protocol):
    def claim(self, reply_id: str) -> bool:
        """True the first time a reply id is claimed, False ever after."""
        ...

    def release(self, reply_id: str) -> None:
        """Undo a claim whose send failed, so a retry may send it."""
        ...

    def confirm(self, reply_id: str) -> None:
        """Record that a claimed reply went out (never raises: a claim stays a claim)."""
        ...


@dataclass(frozen=True, slots=True)
class Outbox:
    adapters: Mapping[str, ChannelAdapter]
    ledger: SendLedger

    def deliver(self, replies: Sequence[Reply]) -> None:
        # One message's replies may go to two places (the customer, and the reps' desk during a
        # handoff): each run of replies goes to its own channel's adapter, in order.
        for channel, run in itertools.groupby(replies, key=lambda reply: reply.channel):
            self._send(channel, list(run))

    def _send(self, channel: str, replies: list[Reply]) -> None:
        adapter = self.adapters.get(channel)
        if adapter is None:  # e.g. the desk when no Slack handoff channel is configured
            logger.warning("no_adapter_for_replies", channel=channel, replies=len(replies),
                           conversation_id=replies[0].conversation_id)
            return
        fresh = [reply for reply in replies if self.ledger.claim(reply.reply_id)]
        if not fresh:
            return
        try:
            # The adapter runs each of its posts through ``once``: when post N fails, the posts
            # before it stay claimed, so the retry sends N onwards and nothing twice.
            adapter.send(fresh, once=self.once)
        except Exception:
            for reply in fresh:
                self.ledger.release(reply.reply_id)
            raise
        for reply in fresh:
            self.ledger.confirm(reply.reply_id)

    def once(self, key: str, step: Callable[[], object]) -> None:
        """Run ``step`` unless ``key`` was claimed before; a failed step is released for the retry."""
        if not self.ledger.claim(key):
            return
        try:
            step()
        except Exception:
            self.ledger.release(key)
            raise
        self.ledger.confirm(key)


@dataclass(frozen=True, slots=True)
class Pipeline:
    dialogue: Dialogue
    log: ConversationLog
    outbox: Outbox
    metrics: Metrics = field(default_factory=Metrics.create)

    def process(self, delivery: Delivery) -> None:
        envelope = prepared(delivery.envelope, self.outbox.adapters)
        # A rep's or a re-check's envelope is not a customer message, so it is not logged as one.
        stored_now = envelope.role == "customer" and self.log.record_inbound(envelope)
        # A message stored just now cannot have been answered before: skip the look-up (a query
        # saved on every message's hot path). A retried one may have been, and keeps its replies.
        replies = None if stored_now else self.log.replies_to(envelope)
        if replies is None:
            decision = self.dialogue.decide(envelope)
            replies = list(decision.replies)
            # Every reply is logged, the posts to the reps' thread too, so a retry after a failed
            # send replays them all; the conversation's new state is kept only once they are logged,
            # so a retry after a failed log decides again from the state the message found.
            self.log.record_replies(envelope, replies)
            self.dialogue.commit(decision)
        try:
            self.outbox.deliver(replies)
        except ParleyError as exc:
            if envelope.role == "agent" and DESK in self.outbox.adapters:
                self._tell_desk(envelope, exc)
            raise
        self.metrics.answered(envelope, replies)

    def _tell_desk(self, envelope: Envelope, exc: ParleyError) -> None:
        # The rep would otherwise believe the customer got it. Its id is fixed per rep message, so
        # however often the message is retried, the thread hears about it once.
        notice = Reply(conversation_id=envelope.conversation_id, channel=DESK, route={"kind": "error"},
                       text=f"Could not deliver this to the customer ({exc.public_message}); retrying.",
                       in_reply_to=envelope.message_id, reply_id=f"{reply_id(envelope, 0)}-undelivered")
        try:
            self.outbox.deliver([notice])
        except ParleyError as desk_exc:
            logger.warning("desk_notice_failed", conversation_id=envelope.conversation_id,
                           detail=str(desk_exc))


class Periodic(Protocol):
    name: str
    every_seconds: float

    def run(self) -> None: ...


class WorkerPool:
    """One thread per inbox partition, so each conversation is handled by one thread at a time."""

    def __init__(self, inbox: Inbox, pipeline: Pipeline, *, poll_seconds: float = 0.5,
                 periodic: Sequence[Periodic] = (), transient_budget: float = TRANSIENT_BUDGET) -> None:
        self.inbox = inbox
        self.pipeline = pipeline
        self.periodic = tuple(periodic)
        self._poll = poll_seconds
        self._transient_budget = transient_budget
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for partition in range(self.inbox.partitions):
            thread = threading.Thread(target=self._run, args=(partition,), daemon=True,
                                      name=f"parley-worker-{partition}")
            thread.start()
            self._threads.append(thread)
        for task in self.periodic:
            thread = threading.Thread(target=self._every, args=(task,), daemon=True,
                                      name=f"parley-{task.name}")
            thread.start()
            self._threads.append(thread)

    def _every(self, task: Periodic) -> None:
        # Periodic jobs only put envelopes in the inbox (deduplicated), so every process may run
        # them: the work itself is done once, in order, by the conversation's worker.
        while not self._stopping.wait(task.every_seconds):
            try:
                task.run()
            except Exception as exc:  # a store hiccup must not end the schedule
                logger.warning("periodic_task_failed", task=task.name, error=type(exc).__name__,
                               detail=str(exc))

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, let in-flight messages finish, and return within ``timeout``."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Closed after the threads finished: a Redis inbox hands its partitions to other processes
        # here, and must not while one of its messages is still in flight.
        self.inbox.close()
        self._threads.clear()

    def _run(self, partition: int) -> None:
        outage = 0
        while not self._stopping.is_set():
            try:
                delivery = self.inbox.take(partition, timeout=self._poll)
            except Unavailable as exc:
                # Redis is down or restarting: wait and try again; the stored envelopes are safe.
                outage += 1
                if outage == 1:
                    logger.warning("inbox_unavailable", partition=partition, detail=str(exc))
                self._stopping.wait(backoff(outage))
                continue
            if outage:
                logger.info("inbox_available_again", partition=partition)
                outage = 0
            if delivery is not None and not self._handle(delivery):
                self._stopping.wait(backoff(delivery.attempt))

    def _handle(self, delivery: Delivery) -> bool:
        """Process one delivery; False when it failed (it stays in the inbox for a later attempt)."""
        envelope = delivery.envelope
        log = logger.bind(conversation_id=envelope.conversation_id, channel=envelope.channel,
                          message_id=envelope.message_id, attempt=delivery.attempt)
        try:
            # Bound for the thread too, so what the engines log (fallbacks, tokens) names the conversation.
            with structlog.contextvars.bound_contextvars(conversation_id=envelope.conversation_id,
                                                         channel=envelope.channel):
                self._process_through_outages(delivery, log)
        except ParleyError as exc:
            log.warning("message_failed", error=type(exc).__name__, detail=str(exc))
            self.pipeline.metrics.failed(type(exc).__name__)
            return self._settle(delivery, failure=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must not kill the worker thread; the entry is retried
            log.exception("message_crashed", error=type(exc).__name__)
            self.pipeline.metrics.failed(type(exc).__name__)
            return self._settle(delivery, failure=f"{type(exc).__name__}: {exc}")
        log.info("message_answered")
        return self._settle(delivery, failure=None)

    def _process_through_outages(self, delivery: Delivery, log: Any) -> None:
        """Process; while a store it needs is down (``Unavailable``), wait and try again in place.

        An outage is not the message's fault: retried through the inbox, every message of a
        PostgreSQL restart would spend its attempts within seconds and be dead-lettered
        (tests/integration/test_faults.py). In place, it keeps its attempts and its partition's
        order; the lease keeper holds the partition meanwhile. Stopping hands it back.

        A platform's transient failure (429, 5xx, network: ``UpstreamError.transient``) is waited
        out the same way, for up to ``transient_budget`` seconds: the platform's Retry-After, else
        1 s doubling to 60 s. Past the budget it counts as one failed attempt, so a platform down
        for good still dead-letters (after about max_attempts x budget); a permanent failure
        (invalid_auth, channel_not_found...) counts at once, as before.
        """
        outage, started = 0, time.monotonic()
        error: ParleyError
        while True:
            try:
                return self.pipeline.process(delivery)
            except Unavailable as exc:
                outage, error, wait = outage + 1, exc, backoff(outage + 1)
                if outage == 1:
                    log.warning("store_unavailable_waiting", detail=str(exc))
                    self.pipeline.metrics.failed(type(exc).__name__)
            except UpstreamError as exc:
                left = self._transient_budget - (time.monotonic() - started)
                if not exc.transient or left <= 0:
                    raise
                outage, error = outage + 1, exc
                wait = min(left, max(0.1, exc.retry_after) if exc.retry_after is not None
                           else backoff(outage, base=1.0, cap=60.0))
                log.warning("upstream_transient_waiting", detail=str(exc), wait=round(wait, 1))
                self.pipeline.metrics.failed(type(exc).__name__)
            if self._stopping.wait(wait):
                raise error  # stopping hands the message back

    def _settle(self, delivery: Delivery, *, failure: str | None) -> bool:
        # If the inbox is unreachable now, the entry simply stays pending and is taken again later;
        # the conversation log and the send ledger make that second run send nothing twice.
        try:
            if failure is None:
                self.inbox.done(delivery)
            else:
                self.inbox.fail(delivery, failure)
        except Unavailable as exc:
            logger.warning("inbox_settle_failed", conversation_id=delivery.envelope.conversation_id,
                           detail=str(exc))
            return False
        return failure is None


def backoff(attempt: int, *, base: float = 0.1, cap: float = 5.0) -> float:
    """Seconds to wait before retry number ``attempt``: exponential, capped."""
    return min(cap, base * 2 ** max(0, attempt - 1))
