"""In-process implementations for the embedded mode: one process, no servers, same semantics."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from parley.core.envelope import Envelope, Reply
from parley.core.inbox import Delivery, partition_of
from parley.core.sessions import Session
from parley.errors import Unavailable


class MemorySessionStore:
    """Sessions in a dict, expired ``ttl`` seconds after their last save."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._sessions: dict[str, tuple[float, Session]] = {}
        self._lock = threading.Lock()

    def load(self, conversation_id: str) -> Session | None:
        with self._lock:
            found = self._sessions.get(conversation_id)
            if found is None:
                return None
            expires, session = found
            if expires <= self._clock():
                del self._sessions[conversation_id]
                return None
            return session

    def save(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.conversation_id] = (self._clock() + self._ttl, session)


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
        self._ready = threading.Condition()
        self._closed = False

    def put(self, envelope: Envelope) -> bool:
        with self._ready:
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
            self._ready.notify_all()
            return True

    def take(self, partition: int, timeout: float) -> Delivery | None:
        with self._ready:
            queue = self._queues[partition]
            if not self._ready.wait_for(lambda: bool(queue) or self._closed, timeout=timeout):
                return None
            if self._closed:
                return None
            # Peek, do not pop: the entry stays first in line until done, which keeps order.
            return queue[0]

    def done(self, delivery: Delivery) -> None:
        with self._ready:
            queue = self._queues[delivery.partition]
            if queue and queue[0].entry_id == delivery.entry_id:
                queue.popleft()

    def fail(self, delivery: Delivery, reason: str) -> None:
        with self._ready:
            queue = self._queues[delivery.partition]
            if not queue or queue[0].entry_id != delivery.entry_id:
                return
            queue.popleft()
            if delivery.attempt >= self._max_attempts:
                self.dead_letters.append((delivery, reason))
            else:
                queue.appendleft(replace(delivery, attempt=delivery.attempt + 1))
                self._ready.notify_all()

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def depth(self) -> int:
        return sum(len(queue) for queue in self._queues)

    def _forget_expired(self, now: float) -> None:
        if len(self._seen) > 4 * self._capacity:
            self._seen = {key: until for key, until in self._seen.items() if until > now}


@dataclass(frozen=True, slots=True)
class MailboxEvent:
    seq: int
    replies: tuple[Reply, ...]


class MemoryMailbox:
    """Recent reply batches per conversation, for web clients waiting on or streaming them."""

    def __init__(self, keep: int = 50) -> None:
        self._keep = keep
        self._events: dict[str, deque[MailboxEvent]] = {}
        self._seq = itertools.count(1)
        self._changed = threading.Condition()

    def publish(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        with self._changed:
            events = self._events.setdefault(conversation_id, deque(maxlen=self._keep))
            events.append(MailboxEvent(next(self._seq), tuple(replies)))
            self._changed.notify_all()

    def wait_for(self, conversation_id: str, in_reply_to: str, timeout: float) -> list[Reply] | None:
        """The replies to one message, waiting up to ``timeout``; None when they did not come."""

        def answered() -> list[Reply] | None:
            for event in self._events.get(conversation_id, ()):
                if event.replies and event.replies[0].in_reply_to == in_reply_to:
                    return list(event.replies)
            return None

        with self._changed:
            found: list[Reply] | None = None

            def ready() -> bool:
                nonlocal found
                found = answered()
                return found is not None

            self._changed.wait_for(ready, timeout=timeout)
            return found

    def after(self, conversation_id: str, seq: int, timeout: float) -> list[MailboxEvent]:
        """Events newer than ``seq``, waiting up to ``timeout`` for the first one."""
        with self._changed:
            def newer() -> list[MailboxEvent]:
                return [event for event in self._events.get(conversation_id, ()) if event.seq > seq]
            self._changed.wait_for(lambda: bool(newer()), timeout=timeout)
            return newer()


class MemorySendLedger:
    """Remembers which reply ids were sent, so a retried message is not sent twice."""

    def __init__(self) -> None:
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, reply_id: str) -> bool:
        with self._lock:
            if reply_id in self._sent:
                return False
            self._sent.add(reply_id)
            return True
