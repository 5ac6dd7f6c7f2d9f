"""Partition leases: which thread, in which process, consumes a partition right now.

A lease is a Redis key holding the owner's token, set with ``SET NX PX`` and renewed by one keeper
thread per process every third of its lifetime. A process that dies (SIGKILL, lost node) stops
renewing, so its leases lapse after ``ttl_ms``: that is the inbox's visibility timeout.

Processes register themselves in a sorted set with a heartbeat; each takes at most its fair share
(partitions / live processes, rounded up) and hands back the surplus between two messages, so a
second pod takes half the partitions off the first instead of standing by forever.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import uuid

import redis
import structlog

from parley.stores.redis import RELEASE_IF_OWNER

logger = structlog.get_logger("parley.inbox")

# KEYS: lease keys. ARGV: token, ttl ms. Renew the leases still ours; 1 per renewed key, else 0.
_RENEW = """
local renewed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    renewed[i] = 1
  else
    renewed[i] = 0
  end
end
return renewed
"""

# KEYS: lease key. ARGV: token, ttl ms. Take a free lease, or keep ours (a renewal we could not
# confirm, say during a Redis restart, must not leave our own partition idle until it expires).
_ACQUIRE = """
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

class Leases:
    def __init__(self, client: redis.Redis, *, prefix: str, partitions: int, ttl_ms: int) -> None:
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis = client
        self._prefix = prefix
        self._partitions = partitions
        self._ttl_ms = ttl_ms
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(RELEASE_IF_OWNER)
        self._acquire = client.register_script(_ACQUIRE)
        self._held: dict[int, float] = {}  # partition -> monotonic time the lease is surely ours until
        self._fair_share = partitions
        self._surplus = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._keeper: threading.Thread | None = None

    @property
    def members_key(self) -> str:
        return f"{self._prefix}inbox:members"

    def key(self, partition: int) -> str:
        return f"{self._prefix}inbox:lease:{partition}"

    def serve(self, partition: int) -> bool:
        """Called by the partition's thread before each take: may it consume the partition now?"""
        self._start_keeper()
        with self._lock:
            if self.holds(partition):
                if self._surplus <= 0:
                    return True
                self._surplus -= 1
                del self._held[partition]
                handing_over = True
            else:
                self._held.pop(partition, None)  # lapsed, if it was ours
                if len(self._held) >= self._fair_share or self._stopping.is_set():
                    return False
                handing_over = False
        if handing_over:
            # Between two messages, so nothing of this partition is in flight here.
            self._release(keys=[self.key(partition)], args=[self.consumer])
            logger.debug("partition_handed_over", partition=partition, consumer=self.consumer)
            return False
        started = time.monotonic()
        if not self._acquire(keys=[self.key(partition)], args=[self.consumer, self._ttl_ms]):
            return False
        with self._lock:
            self._held[partition] = started + self._ttl_ms / 1000 * 0.9
        logger.debug("partition_acquired", partition=partition, consumer=self.consumer)
        return True

    def holds(self, partition: int) -> bool:
        return self._held.get(partition, 0.0) > time.monotonic()

    def close(self) -> None:
        """Stop renewing and hand every lease back at once, so another process takes over now."""
        self._stopping.set()
        with self._lock:
            held = list(self._held)
            self._held.clear()
        for partition in held:
            try:
                self._release(keys=[self.key(partition)], args=[self.consumer])
            except redis.RedisError:
                break  # Redis is down: the leases lapse by themselves

    def _start_keeper(self) -> None:
        if self._keeper is not None:
            return
        self._heartbeat()  # first, so the fair share is known before the first lease is taken
        with self._lock:
            if self._keeper is not None:
                return
            self._keeper = threading.Thread(target=self._keep, daemon=True, name="parley-leases")
            self._keeper.start()

    def _keep(self) -> None:
        while not self._stopping.wait(self._ttl_ms / 3000):
            try:
                self._renew_all()
                self._heartbeat()
            except redis.RedisError as exc:
                logger.warning("lease_renewal_failed", error=type(exc).__name__, detail=str(exc))

    def _renew_all(self) -> None:
        partitions = list(self._held)
        if not partitions:
            return
        started = time.monotonic()
        renewed = self._renew(keys=[self.key(p) for p in partitions], args=[self.consumer, self._ttl_ms])
        with self._lock:
            for partition, ok in zip(partitions, renewed, strict=True):
                if partition not in self._held:
                    continue
                if ok:
                    self._held[partition] = started + self._ttl_ms / 1000 * 0.9
                else:
                    self._held.pop(partition)
                    logger.warning("partition_lease_lost", partition=partition, consumer=self.consumer)

    def _heartbeat(self) -> None:
        now_ms = int(time.time() * 1000)
        with self._redis.pipeline() as pipe:
            pipe.zadd(self.members_key, {self.consumer: now_ms})
            pipe.zremrangebyscore(self.members_key, 0, now_ms - self._ttl_ms)
            pipe.zcard(self.members_key)
            pipe.pexpire(self.members_key, self._ttl_ms * 2)
            members = max(1, pipe.execute()[2])
        with self._lock:
            self._fair_share = math.ceil(self._partitions / members)
            self._surplus = max(0, len(self._held) - self._fair_share)
