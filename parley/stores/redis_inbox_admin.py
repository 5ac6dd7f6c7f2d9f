"""Operations on the Redis inbox for ``parley inbox`` and ``/metrics``: status, dead letters, replay."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from parley.core.envelope import Envelope, envelope_from_json, envelope_to_json
from parley.errors import NotFound
from parley.stores.redis_inbox import RedisInbox
from parley.stores.redis_inbox_claims import text_of
from parley.stores.redis_topology import unavailable


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    id: str  # "<shard>:<stream entry id>"
    envelope: Envelope
    attempts: int
    reason: str


def dead_letters(inbox: RedisInbox, count: int = 100) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    with unavailable("read the dead letters"):
        for shard in range(inbox.shards):
            for entry_id, fields in inbox.client.xrange(inbox.key(shard, "dead"), count=count):
                letters.append(_dead_letter(shard, entry_id, fields))
    return sorted(letters, key=lambda letter: _stamp(letter.id))[:count]


def replay(inbox: RedisInbox, dead_letter_id: str) -> Envelope:
    """Queue a dead-lettered envelope again (at the end of its conversation) and forget the letter."""
    letter = _find(inbox, dead_letter_id)
    envelope = letter.envelope
    shard, queue, sched = inbox.conversation_keys(envelope.conversation_id)
    keys = [queue, sched, inbox.key(shard, "ready"), inbox.key(shard, "seq"), inbox.key(shard, "depth")]
    with unavailable("replay the message"):
        inbox.ensure_groups()
        inbox.scripts["REPLAY"](keys=keys, args=[envelope_to_json(envelope), envelope.conversation_id])
        inbox.client.xdel(inbox.key(shard, "dead"), dead_letter_id.partition(":")[2])
    return envelope


def drop(inbox: RedisInbox, dead_letter_id: str) -> Envelope:
    letter = _find(inbox, dead_letter_id)
    shard = int(dead_letter_id.partition(":")[0])
    with unavailable("drop the message"):
        inbox.client.xdel(inbox.key(shard, "dead"), dead_letter_id.partition(":")[2])
    return letter.envelope


def _find(inbox: RedisInbox, dead_letter_id: str) -> DeadLetter:
    shard_text, _, entry_id = dead_letter_id.partition(":")
    if not shard_text.isdigit() or not entry_id or int(shard_text) >= inbox.shards:
        raise NotFound(f"no dead letter {dead_letter_id}")
    shard = int(shard_text)
    with unavailable("read the dead letters"):
        try:
            entries = inbox.client.xrange(inbox.key(shard, "dead"), entry_id, entry_id)
        except redis.ResponseError:  # not a stream id at all
            entries = []
    if not entries:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return _dead_letter(shard, *entries[0])


def _dead_letter(shard: int, entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(id=f"{shard}:{text_of(entry_id)}", envelope=envelope_from_json(fields[b"envelope"]),
                      attempts=int(fields[b"attempts"]), reason=fields[b"reason"].decode("utf-8", "replace"))


def _stamp(dead_letter_id: str) -> tuple[int, int]:
    millis, _, sequence = dead_letter_id.partition(":")[2].partition("-")
    return int(millis), int(sequence or 0)
