"""Building every part from ``Settings``: the one place that chooses embedded or real backends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
from pydantic import SecretStr

from parley.channels.base import ChannelAdapter, WebhookAdapter
from parley.channels.files import FileRules
from parley.channels.slack import SlackAdapter
from parley.channels.slack_common import web_client
from parley.channels.slack_desk import SlackDesk
from parley.channels.telegram import TelegramAdapter
from parley.channels.twilio_sms import TwilioAdapter
from parley.channels.web import RateLimits, WidgetAdapter
from parley.channels.web_secrets import ConversationKeys
from parley.core.dialogue import Dialogue, Policy, StreamSink
from parley.core.engine import AnswerEngine, TokenSink
from parley.core.envelope import Envelope
from parley.core.files import FileStore
from parley.core.handoff import DESK, BusinessHours, HandoffRules
from parley.core.inbox import Inbox
from parley.core.knowledge import KnowledgeIndex
from parley.core.mailbox import Mailbox
from parley.core.ratelimit import RateLimiter
from parley.core.relay import HandoffTexts
from parley.core.sessions import SessionStore
from parley.data.retention import RetentionSweep
from parley.engines.live import LiveKnowledge
from parley.metrics import Metrics
from parley.settings import Settings
from parley.stores.desk import SqlDeskDirectory
from parley.stores.language import LangidDetector
from parley.stores.ratelimit import RedisFloodGate
from parley.stores.redis_admission import RedisCountedPut
from parley.stores.redis_inbox import RedisInbox
from parley.stores.sql import SqlConversationLog, open_database
from parley.webhooks.throttle import SenderLimits
from parley.wiring.knowledge import live_knowledge_of
from parley.wiring.stores import (  # noqa: F401 - also imported from here
    embedded_journal_path,
    file_store_of,
    flood_gate_of,
    rate_limiter_of,
    redis_inbox_of,
    shared_state_of,
    widget_key_of,
)
from parley.worker.pipeline import Outbox, Pipeline
from parley.worker.pool import WorkerPool
from parley.worker.reminders import HandoffReminders


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """Every part a process runs, built once from ``Settings`` (see ``build_services``)."""

    settings: Settings
    # The knowledge base as it is on disk now, and the engine answering from it (``engines.live``).
    knowledge: LiveKnowledge
    sessions: SessionStore
    inbox: Inbox
    log: SqlConversationLog
    widget: WidgetAdapter
    desk: SlackDesk | None
    # The channels that come in by webhook, by name (the widget and the desk's too).
    adapters: dict[str, WebhookAdapter]
    # Flood control for the webhook channels, judged before a message reaches the inbox.
    limits: SenderLimits
    metrics: Metrics
    dialogue: Dialogue
    pipeline: Pipeline
    workers: WorkerPool
    # Called by /readyz; each raises (Unavailable) when a store it checks is unreachable.
    health: tuple[Callable[[], None], ...] = field(default=())

    @property
    def index(self) -> KnowledgeIndex:
        return self.knowledge.current.index

    @property
    def engine(self) -> AnswerEngine:
        return self.knowledge.current.engine

    def close(self) -> None:
        self.workers.stop()
        for adapter in self.pipeline.outbox.adapters.values():
            adapter.close()


def build_services(settings: Settings, *, direct: Sequence[ChannelAdapter] = ()) -> Services:
    """Every part, wired from ``settings``. ``direct`` channels take their messages by a call, not a
    webhook (the terminal's ``parley chat``, a test's collecting channel); their replies go out
    through the same outbox as every channel's."""
    sessions, inbox, mailbox, ledger = shared_state_of(settings)
    log = SqlConversationLog(open_database(settings.database_url))
    log.create_schema()
    knowledge = live_knowledge_of(settings, log)
    desk = desk_of(settings, log)
    limiter = rate_limiter_of(settings)  # the widget's limits, and the floods' in process and on a cluster
    files = file_store_of(settings)  # a rep's files, kept for the widget and for Twilio to fetch
    widget = widget_of(settings, mailbox, log, limiter, with_person=with_person_of(sessions, desk), files=files)
    adapters: dict[str, WebhookAdapter] = {widget.name: widget,
                                           **text_channels_of(settings, desk=desk, log=log, files=files)}
    if desk is not None:
        adapters[DESK] = desk
    dialogue = Dialogue(engine=knowledge, sessions=sessions, policy=policy_of(settings, desk=desk is not None),
                        events=log, on_engine_error=_log_engine_error, stream=widget_stream(widget),
                        detect=detector_of(settings))
    metrics = Metrics.create()
    outbox = Outbox({**adapters, **{channel.name: channel for channel in direct}}, ledger,
                    files=FileRules(max_bytes=int(settings.handoff.files.max_mb * 1_000_000),
                                    types=settings.handoff.files.types))
    pipeline = Pipeline(dialogue=dialogue, log=log, outbox=outbox, metrics=metrics)
    return Services(settings=settings, knowledge=knowledge, sessions=sessions, inbox=inbox, log=log,
                    widget=widget, desk=desk, adapters=adapters, limits=sender_limits_of(settings, limiter, inbox),
                    metrics=metrics, dialogue=dialogue, pipeline=pipeline,
                    workers=WorkerPool(inbox, pipeline,
                                       workers=settings.server.workers_for(llm=settings.llm.api_key is not None),
                                       periodic=(*reminders_of(settings, desk, inbox), *retention_of(settings, log)),
                                       poll_seconds=_poll_seconds(inbox)),
                    health=(inbox.ping,) if isinstance(inbox, RedisInbox) else ())


def widget_of(settings: Settings, mailbox: Mailbox, log: SqlConversationLog, limiter: RateLimiter, *,
              with_person: Callable[[str, float], bool], files: FileStore | None = None) -> WidgetAdapter:
    widget = settings.channels.widget
    return WidgetAdapter(mailbox=mailbox, log=log, max_text_chars=settings.limits.max_text_chars,
                         reply_timeout=settings.server.reply_timeout_seconds,
                         allowed_origins=widget.allowed_origins, rate_limiter=limiter,
                         keys=ConversationKeys(lambda: widget_key_of(settings)),
                         legacy_claim_seconds=widget.legacy_claim_hours * 3600, texts=settings.catalog,
                         limits=RateLimits(per_browser=widget.messages_per_minute,
                                           per_address=widget.messages_per_minute_per_ip),
                         with_person=with_person, files=files, uploads=file_store_of(settings))


def sender_limits_of(settings: Settings, limiter: RateLimiter, inbox: Inbox) -> SenderLimits:
    limits = settings.limits
    gate = flood_gate_of(settings, limiter, client=inbox.client if isinstance(inbox, RedisInbox) else None)
    # One Redis holds the windows and the inbox: counted and stored in one script.
    counted_put = RedisCountedPut(gate, inbox) if isinstance(gate, RedisFloodGate) and isinstance(inbox, RedisInbox) \
        else None
    return SenderLimits(gate=gate, per_sender=limits.messages_per_minute_per_sender,
                        per_conversation=limits.messages_per_minute_per_conversation, counted_put=counted_put)


def _poll_seconds(inbox: Inbox) -> float:
    # A blocking XREADGROUP returns as soon as a conversation is ready; a longer block only spares
    # idle round trips.
    return 2.0 if isinstance(inbox, RedisInbox) else 0.5


def text_channels_of(settings: Settings, *, desk: SlackDesk | None = None, log: SqlConversationLog | None = None,
                     files: FileStore | None = None) -> dict[str, WebhookAdapter]:
    """Slack, Twilio and Telegram adapters, each only when its secrets are configured."""
    channels, limit, texts = settings.channels, settings.limits.max_text_chars, settings.catalog
    adapters: dict[str, WebhookAdapter] = {}
    if channels.slack.enabled:
        adapters["slack"] = SlackAdapter(
            bot_token=_secret(channels.slack.bot_token),
            signing_secret=_secret(channels.slack.signing_secret),
            api_url=channels.slack.api_url, max_text_chars=limit, desk=desk,
            feedback=log.record_feedback if log is not None else None, texts=texts)
    if channels.twilio.enabled:
        adapters["twilio"] = TwilioAdapter(
            account_sid=_secret(channels.twilio.account_sid),
            auth_token=_secret(channels.twilio.auth_token),
            api_url=channels.twilio.api_url, public_url=settings.server.public_url, max_text_chars=limit,
            texts=texts, media=files)
    if channels.telegram.enabled:
        adapters["telegram"] = TelegramAdapter(
            bot_token=_secret(channels.telegram.bot_token),
            secret_token=_secret(channels.telegram.secret_token),
            api_url=channels.telegram.api_url, max_text_chars=limit,
            feedback=log.record_feedback if log is not None else None, texts=texts)
    return adapters


def widget_stream(widget: WidgetAdapter) -> StreamSink:
    """Streamed answer text goes live to widget conversations; other channels get the finished text."""
    def sink_for(envelope: Envelope, reply_id: str) -> TokenSink | None:
        if envelope.channel != widget.name:
            return None
        # The mailbox is looked up per piece, not captured, so it may be wrapped after wiring.
        return lambda text: widget.mailbox.publish_token(envelope.conversation_id, reply_id, text)
    return sink_for


def _log_engine_error(envelope: Envelope, exc: Exception) -> None:
    # The dialogue apologised (or handed off); the cause belongs in the log.
    structlog.get_logger("parley.dialogue").warning(
        "engine_failed", conversation_id=envelope.conversation_id, error=type(exc).__name__,
        detail=str(exc)[:300])


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value is not None else ""


def desk_of(settings: Settings, log: SqlConversationLog) -> SlackDesk | None:
    """The reps' desk in Slack, when Slack is configured and a handoff channel is named."""
    slack = settings.channels.slack
    if not slack.enabled or not slack.handoff_channel:
        return None
    return SlackDesk(client=web_client(_secret(slack.bot_token), slack.api_url), signing_secret=_secret(slack.signing_secret),
                     channel=slack.handoff_channel,
                     directory=SqlDeskDirectory(log.database), max_text_chars=settings.limits.max_text_chars,
                     texts=settings.texts.desk_texts())


def with_person_of(sessions: SessionStore, desk: SlackDesk | None) -> Callable[[str, float], bool]:
    """Whether the conversation was already with a person (the bot muted) when a message came in,
    for the widget's request: the message that asks for a person still gets its answer."""
    def with_person(conversation_id: str, at: float) -> bool:
        session = sessions.load(conversation_id) if desk is not None else None
        return (session is not None and session.is_handed_off
                and session.handoff_requested_at is not None and session.handoff_requested_at <= at)
    return with_person


def reminders_of(settings: Settings, desk: SlackDesk | None, inbox: Inbox) -> tuple[HandoffReminders, ...]:
    rules = handoff_rules_of(settings, desk=desk is not None)
    every = rules.unclaimed_reminder_seconds
    if desk is None or not every:
        return ()
    return (HandoffReminders(directory=desk.directory, inbox=inbox, rules=rules,
                             every_seconds=max(1.0, min(60.0, every / 5))),)


def retention_of(settings: Settings, log: SqlConversationLog) -> tuple[RetentionSweep, ...]:
    days = settings.data.retention_days
    if days is None:
        return ()
    return (RetentionSweep(log.database, days=days, every_seconds=settings.data.retention_check_seconds),)


def handoff_rules_of(settings: Settings, *, desk: bool) -> HandoffRules:
    config = settings.handoff
    hours = config.business_hours
    weekdays = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return HandoffRules(
        desk=desk, on_request=config.on_request, keywords=config.keywords,
        low_confidence_after=config.low_confidence_after, on_engine_request=config.on_engine_request,
        engine_failures_after=config.engine_failures_after,
        hours=None if hours is None else BusinessHours(
            timezone=hours.timezone, days=tuple(weekdays.index(day) for day in hours.days),
            opens=hours.opens, closes=hours.closes),
        unclaimed_reminder_seconds=config.unclaimed_reminder_seconds,
        expected_wait_minutes=config.expected_wait_minutes, note_prefix=config.note_prefix,
        show_rep_names=config.show_rep_names, transcript_turns=config.transcript_turns)


def policy_of(settings: Settings, *, desk: bool = False) -> Policy:
    return Policy.speaking(settings.catalog, min_confidence=settings.knowledge.min_confidence,
                           history_turns=settings.storage.history_turns,
                           history_chars=settings.storage.history_chars,
                           handoff=handoff_rules_of(settings, desk=desk),
                           handoff_texts=HandoffTexts(desk=settings.texts.desk_texts()))


def detector_of(settings: Settings) -> LangidDetector | None:
    """The language guesser, when there is more than one language to guess between."""
    texts = settings.texts
    if not texts.detect_language or len(texts.all_languages) < 2:
        return None
    # Read at start (about 1 s of CPU, bench/language.py): the first customer's answer must not wait
    # for it, and a process is only ready when it can answer promptly.
    return LangidDetector(texts.all_languages).load()
