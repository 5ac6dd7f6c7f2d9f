"""The embedded inbox: one queue per conversation in this process, same contract as the Redis one.

With a journal (``parley.stores.sqlite_journal``, what ``parley serve`` uses without Redis) every
change is also written to disk first, and the inbox starts from what the journal holds: a restart
loses no acknowledged message and forgets no dedupe key.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from parley.core.envelope import Envelope
from parley.core.inbox import Claim, Delivery
from parley.errors import LostClaim, Unavailable
from parley.stores.sqlite_journal import InboxJournal


@dataclass(frozen=True, slots=True)
class DeadLetter:
    delivery: Delivery
    reason: str


class MemoryInbox:
    """Per-conversation queues, a queue of ready conversations, dedupe, retries, dead letters.

    A conversation is in ``_ready`` or in ``_claimed`` exactly while it has messages queued, so
    each is served by one worker at a time and none is forgotten.
    """

    def __init__(self, *, dedupe_ttl: float, max_attempts: int = 5, capacity: int = 10_000,
                 clock: Callable[[], float] = time.monotonic, journal: InboxJournal | None = None) -> None:
        self.dead_letters: list[DeadLetter] = []
        self._queues: dict[str, deque[tuple[str, Envelope]]] = {}
        self._ready: deque[str] = deque()
        self._claimed: dict[str, str] = {}  # conversation id -> token of the claim that holds it
        self._attempts: dict[str, int] = {}  # entry id -> takes so far
        # Insertion order is expiry order (one TTL for all), so expired keys leave from the front:
        # O(1) per put at any size, where a periodic rebuild would stall the inbox lock.
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._dedupe_ttl = dedupe_ttl
        self._max_attempts = max_attempts
        self._capacity = capacity
        self._clock = clock
        self._ids = itertools.count(1)
        self._depth = 0
        self._lock = threading.Lock()
        self._has_ready = threading.Condition(self._lock)
        self._closed = False
        self._journal = journal
        if journal is not None:
            with self._lock:
                self._restore(journal)

    def put(self, envelope: Envelope) -> bool:
        with self._lock:
            now = self._clock()
            self._forget_expired(now)
            if self._seen.get(envelope.dedupe_key, 0.0) > now:
                return False
            if self._depth >= self._capacity:
                raise Unavailable(f"inbox full ({self._capacity} envelopes)")
            # Marked seen in the same critical section as the enqueue: never seen-but-not-stored.
            entry_id = next(self._ids)
            if self._journal is not None:  # on disk first: a failure here is a 503, nothing half done
                self._journal.stored(entry_id, envelope, dedupe_ttl=self._dedupe_ttl)
            self._seen[envelope.dedupe_key] = now + self._dedupe_ttl
            self._enqueue(str(entry_id), envelope)
            return True

    def claim(self, limit: int, timeout: float) -> list[Claim]:
        with self._lock:
            if not self._has_ready.wait_for(lambda: bool(self._ready) or self._closed, timeout=timeout):
                return []
            if self._closed:
                return []
            claims = []
            while self._ready and len(claims) < limit:
                conversation_id = self._ready.popleft()
                token = str(next(self._ids))
                self._claimed[conversation_id] = token
                claims.append(Claim(conversation_id=conversation_id, token=token))
            return claims

    def next(self, claim: Claim) -> Delivery | None:
        with self._lock:
            self._check(claim)
            queue = self._queues.get(claim.conversation_id)
            if not queue:
                # Ended under the lock: a put from now on makes the conversation ready again.
                del self._claimed[claim.conversation_id]
                self._queues.pop(claim.conversation_id, None)
                return None
            entry_id, envelope = queue[0]
            attempt = self._attempts.get(entry_id, 0) + 1
            if self._journal is not None:  # so a message that kills the process still runs out of tries
                self._journal.taken(int(entry_id), attempt)
            self._attempts[entry_id] = attempt
            return Delivery(envelope=envelope, claim=claim, entry_id=entry_id, attempt=attempt)

    def done(self, delivery: Delivery) -> None:
        with self._lock:
            self._check(delivery.claim)
            if self._journal is not None and self._is_head(delivery):
                self._journal.answered(int(delivery.entry_id))
            self._pop_head(delivery)

    def fail(self, delivery: Delivery, reason: str) -> bool:
        with self._lock:
            self._check(delivery.claim)
            if delivery.attempt < self._max_attempts:
                return False
            if self._journal is not None and self._is_head(delivery):
                self._journal.dead_lettered(int(delivery.entry_id), reason)
            if self._pop_head(delivery):
                self.dead_letters.append(DeadLetter(delivery, reason))
            return True

    def release(self, claim: Claim) -> None:
        with self._lock:
            if self._claimed.get(claim.conversation_id) != claim.token:
                return
            del self._claimed[claim.conversation_id]
            if self._queues.get(claim.conversation_id):
                self._ready.append(claim.conversation_id)
                self._has_ready.notify()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._has_ready.notify_all()

    def depth(self) -> int:
        return self._depth

    def status(self) -> dict[str, object]:
        """The shape ``RedisInbox.status`` has, for ``/metrics``."""
        with self._lock:
            return {"queued": self._depth, "in_flight": len(self._claimed),
                    "ready": len(self._ready), "dead_letters": len(self.dead_letters)}

    def _restore(self, journal: InboxJournal) -> None:
        now = self._clock()
        for key, remaining in journal.seen():
            self._seen[key] = now + remaining
        last = 0
        for entry, envelope, attempts in journal.queued():
            self._enqueue(str(entry), envelope)
            if attempts:
                self._attempts[str(entry)] = attempts
            last = entry
        for entry, envelope, attempts, reason in journal.dead():
            claim = Claim(conversation_id=envelope.conversation_id, token="restored")
            self.dead_letters.append(DeadLetter(Delivery(envelope=envelope, claim=claim, entry_id=str(entry),
                                                         attempt=attempts), reason))
            last = max(last, entry)
        self._ids = itertools.count(last + 1)

    def _enqueue(self, entry_id: str, envelope: Envelope) -> None:
        conversation_id = envelope.conversation_id
        queue = self._queues.setdefault(conversation_id, deque())
        queue.append((entry_id, envelope))
        self._depth += 1
        if len(queue) == 1 and conversation_id not in self._claimed:
            self._ready.append(conversation_id)
            self._has_ready.notify()

    def _is_head(self, delivery: Delivery) -> bool:
        queue = self._queues.get(delivery.claim.conversation_id)
        return bool(queue) and queue[0][0] == delivery.entry_id

    def _pop_head(self, delivery: Delivery) -> bool:
        if not self._is_head(delivery):
            return False
        queue = self._queues[delivery.claim.conversation_id]
        queue.popleft()
        self._attempts.pop(delivery.entry_id, None)
        self._depth -= 1
        return True

    def _check(self, claim: Claim) -> None:
        if self._claimed.get(claim.conversation_id) != claim.token:
            raise LostClaim(f"conversation {claim.conversation_id} is no longer held by this claim")

    def _forget_expired(self, now: float) -> None:
        while self._seen:
            key, until = next(iter(self._seen.items()))
            if until > now:
                return
            del self._seen[key]
