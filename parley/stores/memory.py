"""In-process implementations for the embedded mode: one process, no servers, same semantics."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from cachetools import TTLCache

from parley.core.envelope import Reply
from parley.core.mailbox import MailboxEvent
from parley.stores.wakeups import Wakeups
from parley.core.sessions import Session, supersedes
from parley.errors import LostClaim


class MemorySessionStore:
    """Sessions in a bounded cache, expired ``ttl`` seconds after their last save.

    Bounded by idle time and by count: clients make the conversation ids, so an unbounded dict would
    grow with every visitor for as long as the process lives. Expired entries are swept on each save.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic,
                 max_sessions: int = 100_000) -> None:
        self._sessions: TTLCache[str, Session] = TTLCache(maxsize=max_sessions, ttl=ttl, timer=clock)
        self._lock = threading.Lock()

    def load(self, conversation_id: str) -> Session | None:
        with self._lock:
            return self._sessions.get(conversation_id)

    def save(self, session: Session) -> None:
        with self._lock:
            if supersedes(self._sessions.get(session.conversation_id), session):
                raise LostClaim(f"conversation {session.conversation_id} was saved by a later claim")
            # Re-inserting restarts the entry's time to live; the insert also sweeps expired ones.
            self._sessions[session.conversation_id] = session

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's state (GDPR erasure): its next message starts afresh."""
        with self._lock:
            self._sessions.pop(conversation_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._sessions.expire()
            return len(self._sessions)


class MemoryMailbox:
    """Recent events per conversation, for web clients waiting on or streaming them.

    Cursors are strings (Redis stream ids in the Redis implementation); here they are counters.
    """

    def __init__(self, keep: int = 200, *, ttl: float = 24 * 3600, max_conversations: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._keep = keep
        # Bounded like RedisMailbox (which expires a stream ``ttl`` after its last event), and by
        # count too: the conversation ids come from clients.
        self._events: TTLCache[str, deque[MailboxEvent]] = TTLCache(
            maxsize=max_conversations, ttl=ttl, timer=clock)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._wakeups = Wakeups()

    def publish(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        self._append(conversation_id, functools.partial(MailboxEvent, kind="replies", replies=tuple(replies)))

    def publish_token(self, conversation_id: str, reply_id: str, text: str) -> None:
        self._append(conversation_id, functools.partial(MailboxEvent, kind="token", reply_id=reply_id,
                                                        text=text))

    def publish_typing(self, conversation_id: str) -> None:
        self._append(conversation_id, functools.partial(MailboxEvent, kind="typing"))

    def wait_for(self, conversation_id: str, in_reply_to: str, timeout: float) -> list[Reply] | None:
        """The replies to one message, waiting up to ``timeout``; None when they did not come."""
        def answered() -> list[Reply] | None:
            with self._lock:
                return _replies_to(self._events.get(conversation_id, ()), in_reply_to)

        return self._wakeups.wait(conversation_id, answered, timeout)

    def after(self, conversation_id: str, cursor: str, timeout: float) -> list[MailboxEvent]:
        """Events newer than ``cursor`` ("0" for all kept), waiting up to ``timeout`` for one."""
        last = int(cursor) if cursor.isdigit() else 0

        def newer() -> list[MailboxEvent]:
            with self._lock:
                return [e for e in self._events.get(conversation_id, ()) if int(e.cursor) > last]

        return self._wakeups.wait(conversation_id, newer, timeout)

    def close(self) -> None:
        """End every wait now (shutdown): open event streams finish, browsers reconnect elsewhere."""
        self._wakeups.close()

    def _append(self, conversation_id: str, event: Callable[..., MailboxEvent]) -> None:
        """Append ``event`` (a MailboxEvent waiting for its cursor) and wake the waiting readers."""
        with self._lock:
            events = self._events.get(conversation_id) or deque(maxlen=self._keep)
            events.append(event(cursor=str(next(self._seq))))
            # Re-inserting restarts the conversation's idle time; the insert also sweeps expired ones.
            self._events[conversation_id] = events
        self._wakeups.wake(conversation_id)

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's recent events (they hold replies' text): GDPR erasure."""
        with self._lock:
            self._events.pop(conversation_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._events.expire()
            return len(self._events)


def _replies_to(events: Iterable[MailboxEvent], in_reply_to: str) -> list[Reply] | None:
    for event in events:
        if event.kind == "replies" and event.replies and event.replies[0].in_reply_to == in_reply_to:
            return list(event.replies)
    return None


class MemorySendLedger:
    """Remembers which reply ids were sent, so a retried message is not sent twice.

    As the Redis ledger does, it tells a claim still *sending* (taken, its send neither failed nor
    confirmed) from one *sent*: a retry may take the former again (it can only be this process's
    own, since a conversation has one worker), never the latter.
    """

    def __init__(self, keep: int = 100_000) -> None:
        self._claims: dict[str, bool] = {}  # reply id -> sent; insertion-ordered: oldest forgotten first
        self._keep = keep
        self._lock = threading.Lock()

    def claim(self, reply_id: str) -> bool:
        with self._lock:
            if self._claims.get(reply_id):
                return False
            self._claims[reply_id] = False
            if len(self._claims) > self._keep:
                del self._claims[next(iter(self._claims))]
            return True

    def release(self, reply_id: str) -> None:
        """Forget a claim whose send failed, so the retry may send it."""
        with self._lock:
            self._claims.pop(reply_id, None)

    def confirm(self, reply_id: str) -> None:
        with self._lock:
            if reply_id in self._claims:
                self._claims[reply_id] = True
