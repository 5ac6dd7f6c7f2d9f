"""Which stores to use: in Redis when ``REDIS_URL`` is set (every process and pod shares them),
else embedded in this process, with what must survive a restart kept in the SQLite file."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from parley.core.files import FileStore
from parley.core.inbox import Inbox
from parley.core.mailbox import Mailbox
from parley.core.ratelimit import FloodGate, LimiterFloodGate, RateLimiter
from parley.core.sessions import SessionStore
from parley.errors import ConfigError
from parley.settings import Settings
from parley.stores.file_store import MemoryFileStore, RedisFileStore
from parley.stores.memory import MemoryMailbox, MemorySessionStore
from parley.stores.memory_inbox import MemoryInbox
from parley.stores.ratelimit import LimitsRateLimiter, RedisFloodGate
from parley.stores.redis import RedisMailbox, RedisSendLedger, RedisSessionStore
from parley.stores.redis_inbox import RedisInbox
from parley.stores.redis_topology import CLUSTER_SCHEMES, Client, connect, is_cluster, unavailable
from parley.stores.sqlite_journal import InboxJournal, SqliteSendLedger, open_journal_database
from parley.worker.pipeline import SendLedger


def embedded_journal_path(settings: Settings) -> Path:
    """The conversation log's SQLite file, or one of its own beside it when the log is elsewhere."""
    url = settings.database_url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///"))
    return settings.server.data_dir / "embedded.db"


def shared_state_of(settings: Settings) -> tuple[SessionStore, Inbox, Mailbox, SendLedger]:
    """Sessions, inbox, mailbox and send ledger: in Redis when REDIS_URL is set (every process shares
    them), else in this process."""
    storage = settings.storage
    if storage.redis_url is None:
        # Inbox, dedupe, dead letters and ledger also on disk, so a restart neither loses nor repeats.
        journal = open_journal_database(embedded_journal_path(settings))
        inbox = MemoryInbox(dedupe_ttl=storage.dedupe_ttl_seconds, max_attempts=storage.max_attempts,
                            journal=InboxJournal(journal))
        return (MemorySessionStore(ttl=storage.session_ttl_seconds), inbox, MemoryMailbox(),
                SqliteSendLedger(journal, ttl=storage.dedupe_ttl_seconds))
    client, prefix = connect(storage.redis_url.get_secret_value()), storage.key_prefix
    sessions = RedisSessionStore(client, prefix=prefix, ttl=storage.session_ttl_seconds,
                                 max_turns=storage.history_turns, max_chars=storage.history_chars)
    return sessions, redis_inbox_of(settings, client), RedisMailbox(client, prefix=prefix), \
        RedisSendLedger(client, prefix=prefix, ttl=storage.dedupe_ttl_seconds)


def file_store_of(settings: Settings) -> FileStore:
    """Files kept for a platform to fetch: in Redis when there is one (any pod serves them)."""
    storage = settings.storage
    if storage.redis_url is None:
        return MemoryFileStore()
    return RedisFileStore(connect(storage.redis_url.get_secret_value()), prefix=storage.key_prefix)


def forgetters_of(settings: Settings) -> tuple[Callable[[str], None], ...]:
    """What drops a conversation's shared state (session, widget events) from a process that does
    not serve, such as ``parley forget``: only Redis is shared; embedded state lives in the server."""
    storage = settings.storage
    if storage.redis_url is None:
        return ()
    client, prefix = connect(storage.redis_url.get_secret_value()), storage.key_prefix
    sessions = RedisSessionStore(client, prefix=prefix, ttl=storage.session_ttl_seconds,
                                 max_turns=storage.history_turns, max_chars=storage.history_chars)
    return sessions.forget, RedisMailbox(client, prefix=prefix).forget


def redis_inbox_of(settings: Settings, client: Client | None = None) -> RedisInbox:
    storage = settings.storage
    if storage.redis_url is None:
        raise ConfigError("storage.redis_url: not set (set REDIS_URL): the inbox commands need Redis")
    client = client or connect(storage.redis_url.get_secret_value())
    replicas = storage.redis_wait_replicas
    return RedisInbox(client, shards=storage.inbox_shards, prefix=storage.key_prefix,
                      dedupe_ttl=storage.dedupe_ttl_seconds, visibility_timeout=storage.visibility_timeout_seconds,
                      max_attempts=storage.max_attempts, wait_timeout_ms=storage.redis_wait_timeout_ms,
                      wait_replicas=(1 if is_cluster(client) else 0) if replicas is None else replicas)


def widget_key_of(settings: Settings) -> bytes:
    """The key of the widget's conversation secrets: every process that serves the widget needs the
    same. PARLEY_WIDGET_KEY, else one drawn once and kept in Redis (shared by every pod) or, embedded,
    in the data dir (kept across restarts, so open chats survive them)."""
    configured = settings.channels.widget.secret_key
    if configured is not None:
        return configured.get_secret_value().encode("utf-8")
    storage = settings.storage
    if storage.redis_url is not None:
        client, name = connect(storage.redis_url.get_secret_value()), f"{storage.key_prefix}widget:key"
        with unavailable("reading the widget key"):
            client.set(name, os.urandom(32), nx=True)  # the first pod to need it draws it
            return bytes(client.get(name))
    path = settings.server.data_dir / "widget.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
            file.write(os.urandom(32))
    except FileExistsError:
        pass
    return path.read_bytes()


def rate_limiter_of(settings: Settings) -> RateLimiter:
    """Shared in Redis when there is one (every pod counts together), else in this process."""
    url = settings.storage.redis_url
    if url is None:
        return LimitsRateLimiter("memory://")
    return LimitsRateLimiter(url.get_secret_value(), key_prefix=f"{settings.storage.key_prefix}ratelimit")


def flood_gate_of(settings: Settings, limiter: RateLimiter, *, client: Client | None = None) -> FloodGate:
    """The webhooks' flood control: one script per message on one Redis (``client``, the inbox's,
    when given); on a cluster (whose scripts reach one slot) and in process, the rate limiter's steps."""
    url = settings.storage.redis_url
    if url is None:
        return LimiterFloodGate(limiter)
    if url.get_secret_value().partition("://")[0] in CLUSTER_SCHEMES:
        return LimiterFloodGate(limiter)
    return RedisFloodGate(client or connect(url.get_secret_value()), prefix=f"{settings.storage.key_prefix}flood:")
