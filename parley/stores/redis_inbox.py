"""The durable inbox on Redis: a queue per conversation, ready conversations on Redis Streams.

Guarantees, and how:

* **Stored before acked.** ``put`` is one Lua script: it sets the dedupe mark, queues the message
  and, if the conversation has no token yet, adds one to its shard's ``ready`` stream, atomically:
  never seen-but-not-stored. (Production Redis needs AOF for "stored" to survive a restart.)
* **One worker per conversation, any number of conversations at once.** A token is read by one
  consumer of the shard's consumer group (``XREADGROUP``): that consumer holds the conversation
  (``parley.core.inbox``) and takes its messages in order until the queue is empty. Other tokens
  go to other workers, in this process or any other, so a slow conversation holds one worker only.
* **Crash recovery.** A holder's keeper renews its tokens' idle time every third of the visibility
  timeout. A worker that died stops renewing; once its tokens are idle past the timeout another
  process takes them over (``XAUTOCLAIM``) and retries the message at the head, once: the
  conversation log and the send ledger make a re-run send nothing twice.
* **One round trip per message.** ``done`` pops the answered message and takes the next one (its
  attempt counted), which ``next`` then hands out; a crash in between costs that one an attempt,
  and ``release`` un-counts it. A re-sent ``done`` (a lost answer) changes nothing more.
* **Fencing.** Every script acting for a claim checks that the token is still pending for the
  caller; one that lapsed is refused (``LostClaim``).
* **Redis Cluster.** Conversations hash to ``shards``; all of a shard's keys share one hash tag, so
  every script runs on one node (``redis_topology``: claims read shard by shard there, and ``put``
  can wait for a replica before the ack, so a master killed right after it loses nothing).
* **Poison messages.** A message that fails ``max_attempts`` times moves to its shard's dead-letter
  stream with the reason (``parley inbox status | replay ID | drop ID``, in ``redis_inbox_admin``).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import redis
import structlog
from redis.commands.core import Script

from parley.core.envelope import Envelope, envelope_from_json, envelope_to_json
from parley.core.inbox import Claim, Delivery
from parley.errors import LostClaim
from parley.stores import redis_inbox_scripts as scripts
from parley.stores.redis_inbox_claims import HeldClaims, Taken, text_of
from parley.stores.redis_topology import REDIS_ERRORS, Client, read_new, run_replicated, unavailable

logger = structlog.get_logger("parley.inbox")

GROUP = "parley-workers"


def shard_of(conversation_id: str, shards: int) -> int:
    """Stable across processes and restarts (unlike ``hash``), so every pod agrees."""
    return zlib.crc32(conversation_id.encode("utf-8")) % shards


class RedisInbox:
    def __init__(self, client: Client, *, prefix: str, dedupe_ttl: float, visibility_timeout: float,
                 max_attempts: int, shards: int = 16, wait_replicas: int = 0, wait_timeout_ms: int = 250) -> None:
        self.shards = shards
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.client = client  # public for the operations in redis_inbox_admin
        self._prefix = prefix
        self._dedupe_ms = int(dedupe_ttl * 1000)
        self._visibility_ms = int(visibility_timeout * 1000)
        self._max_attempts = max_attempts
        self._wait = (wait_replicas, wait_timeout_ms)
        self.scripts = {name: client.register_script(getattr(scripts, name))
                         for name in ("PUT", "REPLAY", "NEXT", "DONE", "DEAD_LETTER", "RELEASE", "RENEW")}
        self._claims = HeldClaims()  # what the keeper renews
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._keeper: threading.Thread | None = None
        self._groups_ready = False

    def key(self, shard: int, name: str) -> str:
        return f"{self._prefix}inbox:{{s{shard}}}:{name}"

    def conversation_keys(self, conversation_id: str) -> tuple[int, str, str]:
        shard = shard_of(conversation_id, self.shards)
        return shard, self.key(shard, f"q:{conversation_id}"), self.key(shard, f"sched:{conversation_id}")

    def put(self, envelope: Envelope) -> bool:
        keys, args = self.put_step(envelope)
        return self.store(self.scripts["PUT"], keys, args, conversation_id=envelope.conversation_id,
                          stored=lambda answer: answer == 1) == 1

    def put_step(self, envelope: Envelope) -> tuple[list[str], list[Any]]:
        """``PUT``'s keys and arguments for this envelope, for a script that stores it."""
        shard, queue, sched = self.conversation_keys(envelope.conversation_id)
        keys = [self.key(shard, f"seen:{envelope.dedupe_key}"), queue, sched, self.key(shard, "ready"),
                self.key(shard, "seq"), self.key(shard, "depth")]
        return keys, [self._dedupe_ms, envelope_to_json(envelope), envelope.conversation_id]

    def store(self, script: Script, keys: list[str], args: list[Any], *, conversation_id: str,
              stored: Callable[[Any], bool]) -> Any:
        """Run a script that may store a message (``stored`` reads its answer); with replicas to wait
        for, acked once one has it."""
        with unavailable("store the envelope"):
            if not self._wait[0]:
                return script(keys=keys, args=args)
            answer, replicas = run_replicated(self.client, script, keys, args, wait=self._wait)
        if replicas < self._wait[0] and stored(answer):  # only the master has it: a failover could lose it
            logger.warning("inbox_put_not_replicated", conversation_id=conversation_id,
                           replicas=replicas, wanted=self._wait[0])
        return answer

    def claim(self, limit: int, timeout: float) -> list[Claim]:
        if self._closed.is_set() or limit <= 0:
            return []
        with unavailable("read the inbox"):
            self.ensure_groups()
            self._start_keeper()
            claims = self._claims.spare(limit)
            if claims:
                return claims
            # COUNT is per stream: asking each shard for its share keeps the surplus small.
            count = max(1, math.ceil(limit / self.shards))
            try:
                streams = [self.key(shard, "ready") for shard in range(self.shards)]
                answer = read_new(self.client, streams, group=GROUP, consumer=self.consumer, count=count,
                                  timeout=timeout, closed=self._closed)
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                self._groups_ready = False  # Redis lost its data: recreate the groups next time
                return []
        for _stream, entries in answer:
            self._claims.hold(entries)
        return self._claims.spare(limit)

    def next(self, claim: Claim) -> Delivery | None:
        taken = self._claims.pop_taken(claim)
        if taken is not None:  # ``done`` took it already, in the same round trip
            return self._delivery(claim, taken)
        shard, queue, sched = self.conversation_keys(claim.conversation_id)
        with unavailable("take the next message"):
            answer = self.scripts["NEXT"](keys=[queue, sched, self.key(shard, "ready"), self.key(shard, "tries")],
                                           args=[GROUP, self.consumer, claim.token])
        return self._delivery(claim, answer)

    def done(self, delivery: Delivery) -> None:
        """Finish the message and take the conversation's next one, which ``next`` then returns."""
        claim = delivery.claim
        shard, queue, sched = self.conversation_keys(claim.conversation_id)
        keys = [queue, sched, self.key(shard, "ready"), self.key(shard, "tries"), self.key(shard, "depth")]
        with unavailable("finish the message"):
            answer = self.scripts["DONE"](keys=keys, args=[GROUP, self.consumer, claim.token, delivery.entry_id])
        if answer[0] == -1:
            self._delivery(claim, answer)  # raises LostClaim
        self._claims.keep_taken(claim, answer)

    def _delivery(self, claim: Claim, answer: Taken) -> Delivery | None:
        if answer[0] == -1:
            self._claims.forget(claim)
            raise LostClaim(f"conversation {claim.conversation_id}: the claim lapsed")
        if answer[0] == 0:
            self._claims.forget(claim)
            return None
        entry_id, _, data = text_of(answer[1]).partition("|")
        return Delivery(envelope=envelope_from_json(data), claim=claim, entry_id=entry_id,
                        attempt=int(answer[2]))

    def fail(self, delivery: Delivery, reason: str) -> bool:
        if delivery.attempt < self._max_attempts:
            return False
        claim, envelope = delivery.claim, delivery.envelope
        shard, queue, sched = self.conversation_keys(claim.conversation_id)
        keys = [queue, sched, self.key(shard, "ready"), self.key(shard, "tries"), self.key(shard, "depth"),
                self.key(shard, "dead")]
        with unavailable("dead-letter the message"):
            verdict = self.scripts["DEAD_LETTER"](keys=keys, args=[
                GROUP, self.consumer, claim.token, delivery.entry_id, claim.conversation_id,
                delivery.attempt, reason[:2000]])
        if verdict == -1:
            self._claims.forget(claim)
            raise LostClaim(f"conversation {claim.conversation_id}: the claim lapsed")
        logger.error("message_dead_lettered", conversation_id=envelope.conversation_id,
                     message_id=envelope.message_id, attempts=delivery.attempt, reason=reason)
        return True

    def release(self, claim: Claim) -> None:
        shard, queue, sched = self.conversation_keys(claim.conversation_id)
        taken = self._claims.pop_taken(claim)
        self._claims.forget(claim)
        untaken = [text_of(taken[1]).partition("|")[0]] if taken and taken[0] == 1 else []
        try:
            self.scripts["RELEASE"](keys=[queue, sched, self.key(shard, "ready"), self.key(shard, "tries")],
                                     args=[GROUP, self.consumer, claim.token, claim.conversation_id, *untaken])
        except REDIS_ERRORS as exc:  # unreachable: the claim lapses by itself
            logger.warning("claim_release_failed", conversation_id=claim.conversation_id,
                           error=type(exc).__name__)

    def close(self) -> None:
        """Stop claiming; hand back the claims no worker started on (those in flight finish first)."""
        self._closed.set()
        for claim in self._claims.all_spare():
            self.release(claim)

    def status(self) -> dict[str, object]:
        """Messages queued, conversations being answered and waiting for a worker, dead letters."""
        with unavailable("read the inbox"), self.client.pipeline(transaction=False) as pipe:
            for shard in range(self.shards):
                pipe.get(self.key(shard, "depth"))
                pipe.xlen(self.key(shard, "ready"))
                pipe.xlen(self.key(shard, "dead"))
            answers = pipe.execute()
        queued = sum(int(value or 0) for value in answers[0::3])
        conversations = sum(answers[1::3])
        in_flight = 0
        with unavailable("read the inbox"):
            for shard in range(self.shards):
                try:
                    in_flight += self.client.xpending(self.key(shard, "ready"), GROUP)["pending"]
                except redis.ResponseError:  # no group yet: nothing claimed
                    continue
        return {"shards": self.shards, "queued": queued, "in_flight": in_flight,
                "ready": max(0, conversations - in_flight), "dead_letters": sum(answers[2::3])}

    def ping(self) -> None:
        with unavailable("reach Redis"):
            self.client.ping()

    # -- claims: renewed, recovered ------------------------------------------------------------

    def _start_keeper(self) -> None:
        with self._lock:
            if self._keeper is not None:
                return
            self._keeper = threading.Thread(target=self._keep, daemon=True, name="parley-inbox-keeper")
            self._keeper.start()

    def _keep(self) -> None:
        rounds = 0
        while not self._closed.wait(self._visibility_ms / 3000):
            try:
                self._renew()
                self._recover()
                if rounds % 600 == 0:  # every process start adds a consumer to each group
                    self.prune_consumers(idle_ms=max(3_600_000, 2 * self._visibility_ms))
                rounds += 1
            except REDIS_ERRORS as exc:
                logger.warning("inbox_keeper_failed", error=type(exc).__name__, detail=str(exc))

    def _renew(self) -> None:
        held = self._claims.held()
        by_shard: dict[int, list[Claim]] = {}
        for claim in held:
            by_shard.setdefault(shard_of(claim.conversation_id, self.shards), []).append(claim)
        for shard, claims in by_shard.items():
            renewed = self.scripts["RENEW"](keys=[self.key(shard, "ready")],
                                             args=[GROUP, self.consumer, *(c.token for c in claims)])
            for claim, ok in zip(claims, renewed, strict=True):
                if not ok:
                    self._claims.forget(claim)
                    logger.warning("claim_lost", conversation_id=claim.conversation_id)

    def _recover(self) -> None:
        """Take over the tokens of workers that stopped renewing them (a crash, a lost node)."""
        if self._closed.is_set():
            return
        for shard in range(self.shards):
            _cursor, entries, *_ = self.client.xautoclaim(
                self.key(shard, "ready"), GROUP, self.consumer, min_idle_time=self._visibility_ms,
                start_id="0-0", count=10)
            if entries:
                logger.info("claims_recovered", shard=shard, count=len(entries))
                self._claims.hold(entries)

    def prune_consumers(self, idle_ms: int) -> int:
        """Forget the group's consumers of processes gone long ago (every process start adds one)."""
        removed = 0
        for shard in range(self.shards):
            stream = self.key(shard, "ready")
            try:
                consumers = self.client.xinfo_consumers(stream, GROUP)
            except redis.ResponseError:  # no group yet
                continue
            for consumer in consumers:
                name = text_of(consumer["name"])
                if consumer["pending"] == 0 and consumer["idle"] > idle_ms and name != self.consumer:
                    removed += self.client.xgroup_delconsumer(stream, GROUP, name) is not None
        return removed

    def ensure_groups(self) -> None:
        # Also after Redis lost its data: a missing group is recreated, never an error.
        if self._groups_ready:
            return
        for shard in range(self.shards):
            try:
                self.client.xgroup_create(self.key(shard, "ready"), GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

