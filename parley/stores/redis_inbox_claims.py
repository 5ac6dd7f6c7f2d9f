"""What one process's Redis inbox holds: its claims, those no worker has started, and the message
``done`` took for each conversation ahead of ``next``. In-process bookkeeping, thread-safe; Redis
has the truth (a claim is a token pending for this consumer), this only remembers what to renew."""

from __future__ import annotations

import threading
from collections import deque

from parley.core.inbox import Claim

Taken = list  # a NEXT or DONE script's answer: [1, head, takes] or [0]


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class HeldClaims:
    def __init__(self) -> None:
        # Keyed by the claim itself: stream ids repeat across shards.
        self._held: set[Claim] = set()
        self._spare: deque[Claim] = deque()  # claimed beyond what the caller asked for
        self._taken: dict[Claim, Taken] = {}
        self._lock = threading.Lock()

    def hold(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Tokens read from a shard's stream (new, or taken over): spare until a worker asks."""
        with self._lock:
            for token, fields in entries:
                # Deleted after it was read: nothing to serve. Held already: a worker here is on
                # it (a late renewal let our own recovery take it back), and must stay the only one.
                if not fields:
                    continue
                claim = Claim(conversation_id=text_of(fields[b"c"]), token=text_of(token))
                if claim in self._held:
                    continue
                self._held.add(claim)
                self._spare.append(claim)

    def spare(self, limit: int) -> list[Claim]:
        with self._lock:
            return [self._spare.popleft() for _ in range(min(limit, len(self._spare)))]

    def all_spare(self) -> list[Claim]:
        with self._lock:
            spare = list(self._spare)
            self._spare.clear()
            return spare

    def held(self) -> list[Claim]:
        with self._lock:
            return list(self._held)

    def forget(self, claim: Claim) -> None:
        with self._lock:
            self._held.discard(claim)
            self._taken.pop(claim, None)

    def keep_taken(self, claim: Claim, answer: Taken) -> None:
        with self._lock:
            self._taken[claim] = answer

    def pop_taken(self, claim: Claim) -> Taken | None:
        with self._lock:
            return self._taken.pop(claim, None)
