"""The worker pool: up to ``server.workers`` messages in flight in this process, none waiting on another.

A fetcher claims ready conversations from the inbox as worker slots free up, and each claim gets a
worker of its own that answers the conversation's messages in order, then lets the claim go. Under
``parley serve`` and ``parley worker`` the process is gevent-patched, so a worker is a greenlet: a
worker waiting on an LLM or a platform costs a few kilobytes, not a thread, and thousands may wait
at once. Without gevent (tests, a plain interpreter) the same code runs on threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import structlog

from parley.core.inbox import Claim, Delivery, Inbox
from parley.errors import LostClaim, ParleyError, Unavailable, UpstreamError
from parley.worker.pacing import LoopLag
from parley.worker.pipeline import Pipeline

logger = structlog.get_logger("parley.worker")

# How long a platform's transient failures (429, 5xx, network) are waited out in place before
# they count as a failed attempt: a short outage never dead-letters a message.
TRANSIENT_BUDGET = 300.0
# Claims taken in one read at most: a burst is spread over the pods instead of landing on one.
MAX_BATCH = 64


class Periodic(Protocol):
    name: str
    every_seconds: float

    def run(self) -> None: ...


class WorkerPool:
    def __init__(self, inbox: Inbox, pipeline: Pipeline, *, workers: int, poll_seconds: float = 2.0,
                 periodic: Sequence[Periodic] = (), transient_budget: float = TRANSIENT_BUDGET) -> None:
        self.inbox = inbox
        self.pipeline = pipeline
        self.workers = workers
        self.periodic = tuple(periodic)
        self._poll = poll_seconds
        self._transient_budget = transient_budget
        self._slots = threading.BoundedSemaphore(workers)
        self._stopping = threading.Event()
        self._serving: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._lag = LoopLag()

    @property
    def in_flight(self) -> int:
        """Conversations being answered in this process right now."""
        return len(self._serving)

    def start(self) -> None:
        self.pipeline.metrics.capacity.set(self.workers)
        self._lag.start()
        self._spawn(self._fetch, name="parley-fetcher")
        for task in self.periodic:
            self._spawn(self._every, task, name=f"parley-{task.name}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, let in-flight messages finish, and return within ``timeout``."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            serving = list(self._serving)
        for thread in [*serving, *self._threads]:
            thread.join(max(0.0, deadline - time.monotonic()))
        # Closed after the workers finished: a Redis inbox hands its unstarted claims to other
        # processes here, and the claims of messages in flight stay renewed until then.
        self.inbox.close()
        self._lag.stop()
        self._threads.clear()

    def _spawn(self, target: Any, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=name)
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

    # -- claiming ------------------------------------------------------------------------------

    def _fetch(self) -> None:
        outage = 0
        while not self._stopping.is_set():
            self._lag.wait_until_prompt(self._stopping, busy=lambda: self.in_flight)
            free = self._acquire_slots()
            if not free:
                continue
            try:
                claims = self.inbox.claim(free, timeout=self._poll)
            except Unavailable as exc:
                # Redis is down or restarting: wait and try again; the stored envelopes are safe.
                self._release_slots(free)
                outage += 1
                if outage == 1:
                    logger.warning("inbox_unavailable", detail=str(exc))
                self._stopping.wait(backoff(outage))
                continue
            if outage:
                logger.info("inbox_available_again")
                outage = 0
            for claim in claims:
                self._serve_in_background(claim)
            self._release_slots(free - len(claims))

    def _acquire_slots(self) -> int:
        """Wait for one free worker slot, then take whatever else is free right now (a batch)."""
        if not self._slots.acquire(timeout=0.5):
            return 0
        free = 1
        # Late, the loop gets one more worker (the one always allowed), not a batch of them.
        while free < MAX_BATCH and not self._lag.late and self._slots.acquire(blocking=False):
            free += 1
        return free

    def _release_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _serve_in_background(self, claim: Claim) -> None:
        thread = threading.Thread(target=self._serve, args=(claim,), daemon=True,
                                  name=f"parley-conversation-{claim.conversation_id[:16]}")
        with self._lock:
            self._serving.add(thread)
        self.pipeline.metrics.in_flight.inc()
        thread.start()

    # -- serving one conversation ----------------------------------------------------------------

    def _serve(self, claim: Claim) -> None:
        """Answer the claimed conversation's messages in order until none is left (or stopping)."""
        outage = 0
        try:
            while True:
                if self._stopping.is_set():
                    self.inbox.release(claim)  # another process answers the rest at once
                    return
                try:
                    delivery = self.inbox.next(claim)
                except Unavailable as exc:
                    outage += 1
                    if outage == 1:
                        logger.warning("inbox_unavailable", conversation_id=claim.conversation_id,
                                       detail=str(exc))
                    self._stopping.wait(backoff(outage))
                    continue
                outage = 0
                if delivery is None:
                    return
                if not self._handle(delivery):
                    self._stopping.wait(backoff(delivery.attempt))
        except LostClaim as exc:
            # Paused past the visibility timeout: another worker holds the conversation now.
            logger.warning("claim_lost", conversation_id=claim.conversation_id, detail=str(exc))
        finally:
            with self._lock:
                self._serving.discard(threading.current_thread())
            self.pipeline.metrics.in_flight.dec()
            self._slots.release()

    def _handle(self, delivery: Delivery) -> bool:
        """Process one delivery; False when it failed and stays at the head for a later attempt."""
        envelope = delivery.envelope
        log = logger.bind(conversation_id=envelope.conversation_id, channel=envelope.channel,
                          message_id=envelope.message_id, attempt=delivery.attempt)
        try:
            # Bound for the worker too, so what the engines log (fallbacks, tokens) names the conversation.
            with structlog.contextvars.bound_contextvars(conversation_id=envelope.conversation_id,
                                                         channel=envelope.channel):
                self._process_through_outages(delivery, log)
        except LostClaim:
            raise
        except ParleyError as exc:
            log.warning("message_failed", error=type(exc).__name__, detail=str(exc))
            self.pipeline.metrics.failed(type(exc).__name__)
            # A platform that refuses the answers would refuse an apology too: none is sent there.
            return self._settle(delivery, failure=f"{type(exc).__name__}: {exc}",
                                apologise=not isinstance(exc, UpstreamError))
        except Exception as exc:  # a bug must not kill the worker; the message is retried
            log.exception("message_crashed", error=type(exc).__name__)
            self.pipeline.metrics.failed(type(exc).__name__)
            return self._settle(delivery, failure=f"{type(exc).__name__}: {exc}", apologise=True)
        log.info("message_answered")
        return self._settle(delivery, failure=None)

    def _process_through_outages(self, delivery: Delivery, log: Any) -> None:
        """Process; while a store it needs is down (``Unavailable``), wait and try again in place.

        An outage is not the message's fault: retried through the inbox, every message of a
        PostgreSQL restart would spend its attempts within seconds and be dead-lettered
        (tests/integration/test_faults.py). In place, it keeps its attempts and its conversation's
        order; the inbox keeps the claim renewed meanwhile. Stopping hands it back.

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

    def _settle(self, delivery: Delivery, *, failure: str | None, apologise: bool = False) -> bool:
        # If the inbox is unreachable now, the message simply stays at the head and is taken again;
        # the conversation log and the send ledger make that second run send nothing twice.
        try:
            if failure is None:
                self.inbox.done(delivery)
                return True
            if not self.inbox.fail(delivery, failure):
                return False
            if apologise:  # dead-lettered: say so, and go on with the next one
                self.pipeline.apologise(delivery.envelope)
            return True
        except Unavailable as exc:
            logger.warning("inbox_settle_failed", conversation_id=delivery.envelope.conversation_id,
                           detail=str(exc))
            return False


def backoff(attempt: int, *, base: float = 0.1, cap: float = 5.0) -> float:
    """Seconds to wait before retry number ``attempt``: exponential, capped."""
    return min(cap, base * 2 ** max(0, attempt - 1))
