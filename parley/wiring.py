"""Building every part from ``Settings``: the one place that chooses embedded or real backends."""

from __future__ import annotations

from dataclasses import dataclass

from parley.channels.base import ChannelAdapter
from parley.channels.web import WidgetAdapter
from parley.core.dialogue import Dialogue, Policy
from parley.core.engine import AnswerEngine, RetrievalEngine
from parley.core.inbox import Inbox
from parley.core.knowledge import KnowledgeIndex
from parley.core.log import ConversationLog
from parley.core.sessions import SessionStore
from parley.ingest import load_articles
from parley.runtime import Outbox, Pipeline, WorkerPool
from parley.settings import Settings
from parley.stores.memory import MemoryInbox, MemoryMailbox, MemorySendLedger, MemorySessionStore
from parley.stores.sql import SqlConversationLog, make_engine


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    settings: Settings
    index: KnowledgeIndex
    engine: AnswerEngine
    sessions: SessionStore
    inbox: Inbox
    log: ConversationLog
    adapters: dict[str, ChannelAdapter]
    dialogue: Dialogue
    pipeline: Pipeline
    workers: WorkerPool

    def close(self) -> None:
        self.workers.stop()


def build_services(settings: Settings) -> Services:
    index = KnowledgeIndex(load_articles(settings.knowledge.path))
    engine = RetrievalEngine(index)
    storage = settings.storage
    sessions = MemorySessionStore(ttl=storage.session_ttl_seconds)
    inbox = MemoryInbox(partitions=settings.server.workers, dedupe_ttl=storage.dedupe_ttl_seconds)
    log = SqlConversationLog(make_engine(settings.database_url))
    log.create_schema()
    adapters: dict[str, ChannelAdapter] = {
        "widget": WidgetAdapter(
            mailbox=MemoryMailbox(), log=log, max_text_chars=settings.limits.max_text_chars,
            reply_timeout=settings.server.reply_timeout_seconds,
            allowed_origins=settings.channels.widget.allowed_origins,
        ),
    }
    dialogue = Dialogue(engine=engine, sessions=sessions, policy=policy_of(settings))
    pipeline = Pipeline(dialogue=dialogue, log=log, outbox=Outbox(adapters, MemorySendLedger()))
    return Services(settings=settings, index=index, engine=engine, sessions=sessions, inbox=inbox,
                    log=log, adapters=adapters, dialogue=dialogue, pipeline=pipeline,
                    workers=WorkerPool(inbox, pipeline))


def policy_of(settings: Settings) -> Policy:
    return Policy(greeting=settings.bot.greeting, min_confidence=settings.knowledge.min_confidence,
                  history_turns=settings.storage.history_turns,
                  history_chars=settings.storage.history_chars,
                  quick_replies=settings.bot.quick_replies)
