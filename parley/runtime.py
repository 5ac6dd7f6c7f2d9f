"""The worker side of the pipeline: inbox -> dialogue -> conversation log -> outbox -> channel.

``process`` is the whole of one message's life after the webhook acknowledged it. It is safe to run
twice for the same envelope (a worker retried or died): the log keeps the first replies and the send
ledger lets each reply out once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from parley.channels.base import ChannelAdapter
from parley.core.dialogue import Dialogue
from parley.core.envelope import Reply
from parley.core.inbox import Delivery, Inbox
from parley.core.log import ConversationLog
from parley.errors import ParleyError

logger = structlog.get_logger("parley.worker")


class SendLedger(Protocol):
    def claim(self, reply_id: str) -> bool:
        """True the first time a reply id is claimed, False ever after."""
        ...

    def release(self, reply_id: str) -> None:
        """Undo a claim whose send failed, so a retry may send it."""
        ...


@dataclass(frozen=True, slots=True)
class Outbox:
    adapters: Mapping[str, ChannelAdapter]
    ledger: SendLedger

    def deliver(self, replies: Sequence[Reply]) -> None:
        fresh = [reply for reply in replies if self.ledger.claim(reply.reply_id)]
        if not fresh:
            return
        try:
            self.adapters[fresh[0].channel].send(fresh)
        except Exception:
            for reply in fresh:
                self.ledger.release(reply.reply_id)
            raise


@dataclass(frozen=True, slots=True)
class Pipeline:
    dialogue: Dialogue
    log: ConversationLog
    outbox: Outbox

    def process(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        self.log.record_inbound(envelope)
        replies = self.log.replies_to(envelope)
        if replies is None:
            replies = self.dialogue.handle(envelope)
            self.log.record_replies(envelope, replies)
        self.outbox.deliver(replies)


class WorkerPool:
    """One thread per inbox partition, so each conversation is handled by one thread at a time."""

    def __init__(self, inbox: Inbox, pipeline: Pipeline, *, poll_seconds: float = 0.5) -> None:
        self.inbox = inbox
        self.pipeline = pipeline
        self._poll = poll_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for partition in range(self.inbox.partitions):
            thread = threading.Thread(target=self._run, args=(partition,), daemon=True,
                                      name=f"parley-worker-{partition}")
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking work, let in-flight messages finish, and return within ``timeout``."""
        self._stopping.set()
        self.inbox.close()
        for thread in self._threads:
            thread.join(timeout / max(len(self._threads), 1))
        self._threads.clear()

    def _run(self, partition: int) -> None:
        while not self._stopping.is_set():
            delivery = self.inbox.take(partition, timeout=self._poll)
            if delivery is not None:
                self._handle(delivery)

    def _handle(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        log = logger.bind(conversation_id=envelope.conversation_id, channel=envelope.channel,
                          message_id=envelope.message_id, attempt=delivery.attempt)
        try:
            self.pipeline.process(delivery)
        except ParleyError as exc:
            log.warning("message_failed", error=type(exc).__name__, detail=str(exc))
            self.inbox.fail(delivery, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug must not kill the worker thread; the entry is retried
            log.exception("message_crashed", error=type(exc).__name__)
            self.inbox.fail(delivery, f"{type(exc).__name__}: {exc}")
        else:
            self.inbox.done(delivery)
            log.info("message_answered")
