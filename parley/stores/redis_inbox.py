"""The durable inbox on Redis Streams: one stream per partition, one consumer group, leases.

Guarantees, and how:

* **Stored before acked.** ``put`` runs one Lua script: if the dedupe key is absent it ``XADD``s the
  envelope and only then sets the key, atomically, so a key can never say "seen" for a message that
  is not stored. (Production Redis needs AOF persistence for "stored" to survive a restart.)
* **One consumer per partition, cluster-wide.** Every process runs a thread per partition; a thread
  serves its partition only while it holds the partition's lease (``SET NX PX``, renewed by a
  ``Leases`` keeper thread). Others stand by, so a conversation is never handled twice at once.
* **Crash recovery.** A lease holder first takes the oldest *pending* entry (left by a worker that
  died, or by a failed attempt) with ``XCLAIM``, then new ones with ``XREADGROUP``. A killed
  worker's lease expires after the visibility timeout and the standby that takes over answers its
  message, once: the conversation log and the send ledger make a re-run send nothing twice.
* **Poison messages.** An entry that fails ``max_attempts`` times moves to the dead-letter stream
  with the reason (``parley inbox status | replay ID | drop ID``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis
import structlog

from parley.core.envelope import Envelope, envelope_from_json, envelope_to_json
from parley.core.inbox import Delivery, partition_of
from parley.errors import NotFound, Unavailable
from parley.stores.redis import unavailable as _unavailable
from parley.stores.redis_leases import Leases

logger = structlog.get_logger("parley.inbox")

GROUP = "parley-workers"

# KEYS: dedupe key, stream. ARGV: dedupe ttl (ms), envelope JSON. XADD first: never seen-but-not-stored.
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local id = redis.call('XADD', KEYS[2], '*', 'envelope', ARGV[2])
redis.call('SET', KEYS[1], id, 'PX', ARGV[1])
return id
"""

# KEYS: stream. ARGV: group, consumer. The oldest pending entry, claimed, with its delivery count.
_CLAIM_OLDEST = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1)
if #pending == 0 then return false end
local id, deliveries = pending[1][1], pending[1][4]
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
if claimed[1] == nil or claimed[1] == false then
  redis.call('XACK', KEYS[1], ARGV[1], id)
  return {id, deliveries, false}
end
return {id, deliveries, claimed[1][2][2]}
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadLetter:
    id: str
    envelope: Envelope
    partition: int
    attempts: int
    reason: str


class RedisInbox:
    def __init__(self, client: redis.Redis, *, partitions: int, prefix: str, dedupe_ttl: float,
                 visibility_timeout: float, max_attempts: int) -> None:
        self.partitions = partitions
        self._redis = client
        self._prefix = prefix
        self._dedupe_ms = int(dedupe_ttl * 1000)
        self._max_attempts = max_attempts
        self._leases = Leases(client, prefix=prefix, partitions=partitions,
                              ttl_ms=int(visibility_timeout * 1000))
        self._put = client.register_script(_PUT)
        self._claim_oldest = client.register_script(_CLAIM_OLDEST)
        self._closed = threading.Event()
        self._groups_ready = False
        self._pruned: set[int] = set()
        self._idle_consumer_ms = int(visibility_timeout * 2000)

    @property
    def dead_letter_key(self) -> str:
        return f"{self._prefix}inbox:dead"

    def stream(self, partition: int) -> str:
        return f"{self._prefix}inbox:{partition}"

    def put(self, envelope: Envelope) -> bool:
        partition = partition_of(envelope.conversation_id, self.partitions)
        keys = [f"{self._prefix}seen:{envelope.dedupe_key}", self.stream(partition)]
        with _unavailable("store the envelope"):
            return self._put(keys=keys, args=[self._dedupe_ms, envelope_to_json(envelope)]) is not None

    def take(self, partition: int, timeout: float) -> Delivery | None:
        if self._closed.is_set():
            return None
        with _unavailable("read the inbox"):
            self._ensure_groups()
            if not self._leases.serve(partition):
                # Standing by: another thread or process owns it. Mostly a local check (the fair
                # share is full), so a short wait costs nothing and hears a lapsed lease early.
                self._closed.wait(min(timeout, 0.5))
                return None
            if partition not in self._pruned:
                self._prune_consumers(partition)
            delivery = self._take_pending(partition) or self._take_new(partition, timeout)
        if delivery is not None and not self._leases.holds(partition):
            return None  # the lease lapsed while blocked; the new owner claims the entry
        return delivery

    def done(self, delivery: Delivery) -> None:
        stream = self.stream(delivery.partition)
        with _unavailable("finish the entry"), self._redis.pipeline() as pipe:
            pipe.xack(stream, GROUP, delivery.entry_id).xdel(stream, delivery.entry_id).execute()

    def fail(self, delivery: Delivery, reason: str) -> None:
        """Leave the entry pending (the next take retries it), or dead-letter it after max_attempts."""
        if delivery.attempt < self._max_attempts:
            return
        stream = self.stream(delivery.partition)
        fields = {"envelope": envelope_to_json(delivery.envelope), "partition": delivery.partition,
                  "attempts": delivery.attempt, "reason": reason[:2000], "entry": delivery.entry_id}
        with _unavailable("dead-letter the entry"), self._redis.pipeline() as pipe:
            pipe.xadd(self.dead_letter_key, fields)  # type: ignore[arg-type]
            pipe.xack(stream, GROUP, delivery.entry_id).xdel(stream, delivery.entry_id).execute()
        logger.error("message_dead_lettered", conversation_id=delivery.envelope.conversation_id,
                     message_id=delivery.envelope.message_id, attempts=delivery.attempt, reason=reason)

    def close(self) -> None:
        self._closed.set()
        self._leases.close()

    def partitions_held(self) -> frozenset[int]:
        """The partitions this process consumes right now (the others are served elsewhere)."""
        return frozenset(p for p in range(self.partitions) if self._leases.holds(p))

    def ping(self) -> None:
        with _unavailable("reach Redis"):
            self._redis.ping()

    # -- operations for ``parley inbox`` -------------------------------------------------------

    def status(self) -> dict[str, object]:
        with _unavailable("read the inbox"):
            self._ensure_groups()
            with self._redis.pipeline(transaction=False) as pipe:
                for partition in range(self.partitions):
                    pipe.xlen(self.stream(partition))
                    pipe.xpending(self.stream(partition), GROUP)
                pipe.xlen(self.dead_letter_key)
                answers = pipe.execute()
        queued = answers[0:-1:2]
        pending = [summary["pending"] for summary in answers[1:-1:2]]
        return {"partitions": self.partitions, "queued": sum(queued), "pending": sum(pending),
                "busiest": sorted(((q, p) for p, q in enumerate(queued) if q), reverse=True)[:5],
                "dead_letters": answers[-1]}

    def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        with _unavailable("read the dead letters"):
            entries = self._redis.xrange(self.dead_letter_key, count=count)
        return [_dead_letter(entry_id, fields) for entry_id, fields in entries]

    def replay(self, dead_letter_id: str) -> Envelope:
        """Queue a dead-lettered envelope again (at the end of its partition) and forget the letter."""
        letter = self._dead_letter(dead_letter_id)
        stream = self.stream(partition_of(letter.envelope.conversation_id, self.partitions))
        with _unavailable("replay the entry"), self._redis.pipeline() as pipe:
            pipe.xadd(stream, {"envelope": envelope_to_json(letter.envelope)})
            pipe.xdel(self.dead_letter_key, dead_letter_id).execute()
        return letter.envelope

    def drop(self, dead_letter_id: str) -> Envelope:
        letter = self._dead_letter(dead_letter_id)
        with _unavailable("drop the entry"):
            self._redis.xdel(self.dead_letter_key, dead_letter_id)
        return letter.envelope

    # -- internals -----------------------------------------------------------------------------

    def _dead_letter(self, dead_letter_id: str) -> DeadLetter:
        with _unavailable("read the dead letters"):
            try:
                entries = self._redis.xrange(self.dead_letter_key, dead_letter_id, dead_letter_id)
            except redis.ResponseError:
                entries = []
        if not entries:
            raise NotFound(f"no dead letter {dead_letter_id}")
        return _dead_letter(*entries[0])

    def _ensure_groups(self) -> None:
        # Also after Redis lost its data: a missing group is recreated, never an error.
        if self._groups_ready:
            return
        for partition in range(self.partitions):
            try:
                self._redis.xgroup_create(self.stream(partition), GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def _prune_consumers(self, partition: int) -> None:
        """Forget the group's consumers of processes gone long ago (every process start adds one)."""
        stream = self.stream(partition)
        for consumer in self._redis.xinfo_consumers(stream, GROUP):
            name = _text(consumer["name"])
            if consumer["pending"] == 0 and consumer["idle"] > self._idle_consumer_ms \
                    and name != self._leases.consumer:
                self._redis.xgroup_delconsumer(stream, GROUP, name)
        self._pruned.add(partition)

    def _take_pending(self, partition: int) -> Delivery | None:
        while True:
            found = self._claim_oldest(keys=[self.stream(partition)], args=[GROUP, self._leases.consumer])
            if not found:
                return None
            entry_id, deliveries, data = found
            if data:
                return Delivery(envelope=envelope_from_json(data), partition=partition,
                                entry_id=_text(entry_id), attempt=int(deliveries) + 1)

    def _take_new(self, partition: int, timeout: float) -> Delivery | None:
        try:
            answer = self._redis.xreadgroup(GROUP, self._leases.consumer, {self.stream(partition): ">"},
                                            count=1, block=max(1, int(timeout * 1000)))
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):
                self._groups_ready = False
                return None
            raise
        if not answer:
            return None
        entry_id, fields = answer[0][1][0]
        return Delivery(envelope=envelope_from_json(fields[b"envelope"]), partition=partition,
                        entry_id=_text(entry_id))


def _dead_letter(entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    return DeadLetter(id=_text(entry_id), envelope=envelope_from_json(fields[b"envelope"]),
                      partition=int(fields[b"partition"]), attempts=int(fields[b"attempts"]),
                      reason=fields[b"reason"].decode("utf-8", "replace"))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
