"""The ``Inbox``: durable, deduplicated, ordered per conversation.

A webhook ``put``s an envelope and acknowledges the platform only once ``put`` returned. Envelopes
are spread over ``partitions`` by conversation id; one worker at a time drains a partition, so the
messages of one conversation are handled in order while different conversations run in parallel.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Protocol

from parley.core.envelope import Envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """An envelope handed to a worker; ``done`` or ``fail`` it exactly once."""

    envelope: Envelope
    partition: int
    entry_id: str
    attempt: int = 1


class Inbox(Protocol):
    partitions: int

    def put(self, envelope: Envelope) -> bool:
        """Store durably; False when this platform message was already stored (a retry)."""
        ...

    def take(self, partition: int, timeout: float) -> Delivery | None:
        """The oldest unfinished envelope of a partition, waiting up to ``timeout`` seconds."""
        ...

    def done(self, delivery: Delivery) -> None: ...

    def fail(self, delivery: Delivery, reason: str) -> None:
        """Give the envelope back for another attempt, or dead-letter it after too many."""
        ...

    def close(self) -> None:
        """Wake every waiting ``take``; later takes return None. Stored envelopes stay stored."""
        ...


def partition_of(conversation_id: str, partitions: int) -> int:
    """Stable across processes and restarts (unlike ``hash``), so every pod agrees."""
    return zlib.crc32(conversation_id.encode("utf-8")) % partitions
