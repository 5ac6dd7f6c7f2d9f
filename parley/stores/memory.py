"""In-process implementations for the embedded mode: one process, no servers, same semantics."""

from __future__ import annotations

import functools
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from cachetools import TTLCache

from parley.core.envelope import Envelope, Reply
from parley.core.inbox import Delivery, partition_of
from parley.core.mailbox import MailboxEvent
from parley.core.sessions import Session
from parley.errors import Unavailable


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
            # Re-inserting restarts the entry's time to live; the insert also sweeps expired ones.
            self._sessions[session.conversation_id] = session

    def __len__(self) -> int:
        with self._lock:
            self._sessions.expire()
            return len(self._sessions)


class MemoryInbox:
    """Partitioned in-process queues with dedupe, retries and a dead-letter list."""

    def __init__(self, *, partitions: int, dedupe_ttl: float, max_attempts: int = 5,
                 capacity: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.partitions = partitions
        self.dead_letters: list[tuple[Delivery, str]] = []
        self._queues: list[deque[Delivery]] = [deque() for _ in range(partitions)]
        self._seen: dict[str, float] = {}
        self._dedupe_ttl = dedupe_ttl
        self._max_attempts = max_attempts
        self._capacity = capacity
        self._clock = clock
        self._ids = itertools.count(1)
        # One condition per partition over one lock: a new entry wakes only its partition's worker,
        # not every worker (with hundreds of workers, waking all of them on each message cost more
        # CPU than answering it: bench/llm.py).
        self._lock = threading.Lock()
        self._ready = [threading.Condition(self._lock) for _ in range(partitions)]
        self._closed = False

    def put(self, envelope: Envelope) -> bool:
        with self._lock:
            now = self._clock()
            if self._seen.get(envelope.dedupe_key, 0.0) > now:
                return False
            if self.depth() >= self._capacity:
                raise Unavailable(f"inbox full ({self._capacity} envelopes)")
            # Marked seen in the same critical section as the enqueue: never seen-but-not-stored.
            self._seen[envelope.dedupe_key] = now + self._dedupe_ttl
            partition = partition_of(envelope.conversation_id, self.partitions)
            entry = Delivery(envelope=envelope, partition=partition, entry_id=str(next(self._ids)))
            self._queues[partition].append(entry)
            self._forget_expired(now)
            self._ready[partition].notify_all()
            return True

    def take(self, partition: int, timeout: float) -> Delivery | None:
        with self._lock:
            queue = self._queues[partition]
            if not self._ready[partition].wait_for(lambda: bool(queue) or self._closed, timeout=timeout):
                return None
            if self._closed:
                return None
            # Peek, do not pop: the entry stays first in line until done, which keeps order.
            return queue[0]

    def done(self, delivery: Delivery) -> None:
        with self._lock:
            queue = self._queues[delivery.partition]
            if queue and queue[0].entry_id == delivery.entry_id:
                queue.popleft()

    def fail(self, delivery: Delivery, reason: str) -> None:
        with self._lock:
            queue = self._queues[delivery.partition]
            if not queue or queue[0].entry_id != delivery.entry_id:
                return
            queue.popleft()
            if delivery.attempt >= self._max_attempts:
                self.dead_letters.append((delivery, reason))
            else:
                queue.appendleft(replace(delivery, attempt=delivery.attempt + 1))
                self._ready[delivery.partition].notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for ready in self._ready:
                ready.notify_all()

    def depth(self) -> int:
        return sum(len(queue) for queue in self._queues)

    def status(self) -> dict[str, object]:
        """The shape ``RedisInbox.status`` has, for ``/metrics``."""
        return {"partitions": self.partitions, "queued": self.depth(), "dead_letters": len(self.dead_letters)}

    def _forget_expired(self, now: float) -> None:
        if len(self._seen) > 4 * self._capacity:
            self._seen = {key: until for key, until in self._seen.items() if until > now}


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
        self._changed = threading.Condition()

    def publish(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        self._append(conversation_id, functools.partial(MailboxEvent, kind="replies", replies=tuple(replies)))

    def publish_token(self, conversation_id: str, reply_id: str, text: str) -> None:
        self._append(conversation_id, functools.partial(MailboxEvent, kind="token", reply_id=reply_id,
                                                        text=text))

    def publish_typing(self, conversation_id: str) -> None:
        self._append(conversation_id, functools.partial(MailboxEvent, kind="typing"))

    def wait_for(self, conversation_id: str, in_reply_to: str, timeout: float) -> list[Reply] | None:
        """The replies to one message, waiting up to ``timeout``; None when they did not come."""
        found: list[Reply] | None = None

        def answered() -> bool:
            nonlocal found
            found = _replies_to(self._events.get(conversation_id, ()), in_reply_to)
            return found is not None

        with self._changed:
            self._changed.wait_for(answered, timeout=timeout)
        return found

    def after(self, conversation_id: str, cursor: str, timeout: float) -> list[MailboxEvent]:
        """Events newer than ``cursor`` ("0" for all kept), waiting up to ``timeout`` for one."""
        last = int(cursor) if cursor.isdigit() else 0

        def newer() -> list[MailboxEvent]:
            return [e for e in self._events.get(conversation_id, ()) if int(e.cursor) > last]

        with self._changed:
            self._changed.wait_for(lambda: bool(newer()), timeout=timeout)
            return newer()

    def _append(self, conversation_id: str, event: Callable[..., MailboxEvent]) -> None:
        """Append ``event`` (a MailboxEvent waiting for its cursor) and wake the waiting readers."""
        with self._changed:
            events = self._events.get(conversation_id) or deque(maxlen=self._keep)
            events.append(event(cursor=str(next(self._seq))))
            # Re-inserting restarts the conversation's idle time; the insert also sweeps expired ones.
            self._events[conversation_id] = events
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            self._events.expire()
            return len(self._events)


def _replies_to(events: Iterable[MailboxEvent], in_reply_to: str) -> list[Reply] | None:
    for event in events:
        if event.kind == "replies" and event.replies and event.replies[0].in_reply_to == in_reply_to:
            return list(event.replies)
    return None


class MemorySendLedger:
    """Remembers which reply ids were sent, so a retried message is not sent twice."""

    def __init__(self, keep: int = 100_000) -> None:
        self._sent: dict[str, None] = {}  # insertion-ordered: the oldest are forgotten first
        self._keep = keep
        self._lock = threading.Lock()

    def claim(self, reply_id: str) -> bool:
        with self._lock:
            if reply_id in self._sent:
                return False
            self._sent[reply_id] = None
            if len(self._sent) > self._keep:
                del self._sent[next(iter(self._sent))]
            return True

    def release(self, reply_id: str) -> None:
        """Forget a claim whose send failed, so the retry may send it."""
        with self._lock:
            self._sent.pop(reply_id, None)

    def confirm(self, reply_id: str) -> None:
        """Nothing to do: in one process a claim cannot outlive the knowledge of its send."""
