"""One message's life after the webhook acknowledged it: dialogue -> conversation log -> outbox -> channel.

``Pipeline.process`` is the whole of it. It is safe to run twice for the same envelope (a worker
retried or died): the log keeps the first replies and the send ledger lets each reply out once.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import structlog

from parley.channels.base import ChannelAdapter, prepared
from parley.channels.files import FileRules, FileSender, FileSource, fetch_and_check
from parley.core.desk import DeskPost
from parley.core.dialogue import Dialogue
from parley.core.envelope import AnswerMeta, Attachment, Envelope, Reply, reply_id
from parley.core.handoff import DESK
from parley.core.inbox import Delivery
from parley.core.log import ConversationLog
from parley.errors import FileRefused, ParleyError, Undeliverable, UpstreamError
from parley.metrics import Metrics

logger = structlog.get_logger("parley.worker")


class SendLedger(Protocol):
    def claim(self, reply_id: str) -> bool:
        """True unless the reply went out already. A claim of this process's whose send neither
        failed nor was confirmed (its answer lost, or the process died) may be taken again."""
        ...

    def release(self, reply_id: str) -> None:
        """Undo a claim whose send failed, so a retry may send it."""
        ...

    def confirm(self, reply_id: str) -> None:
        """Record that a claimed reply went out (never raises: a claim stays a claim)."""
        ...


# ``on_refused(channel, error)``: the files of a run of replies to ``channel`` that were not passed on.
OnRefused = Callable[[str, FileRefused], None]


@dataclass(frozen=True, slots=True)
class Outbox:
    adapters: Mapping[str, ChannelAdapter]
    ledger: SendLedger
    files: FileRules = FileRules()

    def deliver(self, replies: Sequence[Reply], *, on_refused: OnRefused | None = None) -> None:
        """Send every reply. Files not passed on (a refusal is for good: a retry would refuse them
        again) go to ``on_refused(channel, error)`` before their reply counts as sent, so a failure
        to tell of them is retried; without it, ``FileRefused`` names them once all else went out."""
        refused: list[FileRefused] = []
        # One message's replies may go to two places (the customer, and the reps' desk during a
        # handoff): each run of replies goes to its own channel's adapter, in order.
        for channel, run in itertools.groupby(replies, key=lambda reply: reply.channel):
            refused.extend(self._send(channel, list(run), on_refused))
        if refused:
            raise FileRefused.of(refused)

    def _send(self, channel: str, replies: list[Reply], on_refused: OnRefused | None) -> list[FileRefused]:
        adapter = self.adapters.get(channel)
        if adapter is None:  # e.g. the desk when no Slack handoff channel is configured
            logger.warning("no_adapter_for_replies", channel=channel, replies=len(replies),
                           conversation_id=replies[0].conversation_id)
            return []
        fresh: list[Reply] = []
        try:
            fresh.extend(reply for reply in replies if self.ledger.claim(reply.reply_id))
            if not fresh:
                return []
            # The adapter runs each of its posts through ``once``: when post N fails, the posts
            # before it stay claimed, so the retry sends N onwards and nothing twice. A reply of
            # files alone (``core.relay`` makes them apart from the text) has no text to post.
            if texts := [reply for reply in fresh if reply.text or not reply.files]:
                adapter.send(texts, once=self.once)
        except Exception:
            self._release(fresh)
            raise
        # The texts went out: confirmed now, so a file's failure next cannot send them again.
        with_files = [reply for reply in fresh if reply.files]
        self._confirm([reply for reply in fresh if not reply.files])
        try:
            refused = self._send_files(adapter, with_files)
            if refused and on_refused is not None:
                on_refused(channel, FileRefused.of(refused))
                refused = []
        except Exception:
            self._release(with_files)
            raise
        self._confirm(with_files)
        return refused

    def _release(self, replies: list[Reply]) -> None:
        for reply in replies:
            self.ledger.release(reply.reply_id)

    def _confirm(self, replies: list[Reply]) -> None:
        for reply in replies:
            self.ledger.confirm(reply.reply_id)

    def _send_files(self, adapter: ChannelAdapter, replies: list[Reply]) -> list[FileRefused]:
        """Each file once (keyed "<reply id>#file<n>"); the refused ones are returned, not raised."""
        refused = []
        for reply in replies:
            for index, attachment in enumerate(reply.files):
                key = f"{reply.reply_id}#file{index}"
                try:
                    self.once(key, functools.partial(self._send_file, adapter, reply, attachment, key))
                except FileRefused as exc:
                    logger.info("file_refused", conversation_id=reply.conversation_id, channel=reply.channel,
                                reason=exc.reason)
                    refused.append(exc)
        return refused

    def _send_file(self, adapter: ChannelAdapter, reply: Reply, attachment: Attachment, key: str) -> None:
        if not isinstance(adapter, FileSender):
            raise FileRefused(attachment.name, reason=f"{reply.channel} messages carry text only")
        source = self.adapters.get(attachment.origin)
        if not isinstance(source, FileSource):
            origin = attachment.origin or "there"
            raise FileRefused(attachment.name, reason=f"files from {origin} cannot be fetched")
        adapter.send_file(reply, fetch_and_check(self.files, source, attachment), key=key)

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


def fence_of(delivery: Delivery) -> tuple[int, int] | None:
    """The message's place in its conversation and which take of it this is: both grow with each
    new holder, so a paused worker's state never overwrites its successor's (``Session.fence``)."""
    return (int(delivery.entry_id), delivery.attempt) if delivery.entry_id.isdigit() else None


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
            # The new state first: it names the message it holds, so should the log fail next, the
            # retry decides again from the state before (``Dialogue.decide``). Then every reply is
            # logged (the posts to the reps' thread too) with the handoff steps and the rating, in
            # one transaction: once logged, a retry only replays the sends, and nothing of what the
            # message did can be half kept (tests/integration/test_fault_injection.py).
            self.dialogue.commit(decision, fence=fence_of(delivery))
            if not self.log.record_replies(envelope, replies, events=decision.events, rated=decision.rated):
                # Another worker logged its replies first (it took over this one's lapsed claim):
                # what is sent is always what was logged, whoever wrote it.
                replies = self.log.replies_to(envelope) or []
        desk = DESK in self.outbox.adapters
        # Files not passed on are named in the thread (a failure to say so is retried).
        on_refused = functools.partial(self._refused, envelope) if desk else None
        try:
            self.outbox.deliver(replies, on_refused=on_refused)
        except UpstreamError as exc:
            # The platform refused or failed (a store's outage, ``Unavailable``, is waited out in
            # place by the worker, and would only worry the rep).
            if desk and envelope.role == "agent":
                self._tell_desk(envelope, exc)
            if not isinstance(exc, FileRefused):
                raise
            # Only files were refused (no desk to tell), and for good: the rest went out.
        self.metrics.answered(envelope, replies)

    def apologise(self, envelope: Envelope) -> None:
        """Tell a customer whose message failed every attempt, at once: their channel (a widget
        request waiting for its answer, say) would otherwise wait out its timeout and hear nothing.
        Best effort, once per message; not logged, since the log may be what keeps failing."""
        if envelope.role != "customer":
            return
        envelope = prepared(envelope, self.outbox.adapters)
        text, language = self.dialogue.failure_text(envelope)
        notice = Reply(conversation_id=envelope.conversation_id, channel=envelope.channel, route=envelope.route,
                       text=text, in_reply_to=envelope.message_id, language=language,
                       reply_id=f"{reply_id(envelope, 0)}-failed", meta=AnswerMeta(engine="parley", intent="failed"))
        try:
            self.outbox.deliver([notice])
        except Exception as exc:  # noqa: BLE001 - the message is a dead letter already; say so in the log
            logger.warning("failure_notice_failed", conversation_id=envelope.conversation_id,
                           error=type(exc).__name__, detail=str(exc))

    def _refused(self, envelope: Envelope, channel: str, exc: FileRefused) -> None:
        # Raises when the thread cannot be told: the reply stays unsent, and the retry tells it.
        self.outbox.deliver([self._desk_notice(envelope, exc, suffix=f"files-{channel}")])

    def _desk_notice(self, envelope: Envelope, exc: UpstreamError, *, suffix: str) -> Reply:
        texts = self.dialogue.policy.handoff_texts.desk
        if isinstance(exc, FileRefused):
            text = texts.files_refused.format(files="; ".join(exc.files))
        elif isinstance(exc, Undeliverable):
            text = texts.undelivered.format(reason=exc.reason)
        elif exc.transient:
            text = texts.undelivered_retrying.format(reason=exc.public_message)
        else:
            text = texts.undelivered_refused.format(reason=exc.public_message)
        return Reply(conversation_id=envelope.conversation_id, channel=DESK, desk=DeskPost(kind="error"),
                     text=text, in_reply_to=envelope.message_id, reply_id=f"{reply_id(envelope, 0)}-{suffix}")

    def _tell_desk(self, envelope: Envelope, exc: UpstreamError) -> None:
        # The rep would otherwise believe the customer got it. Its id is fixed per rep message, so
        # however often the message is retried, the thread hears about it once, at the first failure.
        try:
            self.outbox.deliver([self._desk_notice(envelope, exc, suffix="undelivered")])
        except ParleyError as desk_exc:
            logger.warning("desk_notice_failed", conversation_id=envelope.conversation_id,
                           detail=str(desk_exc))
