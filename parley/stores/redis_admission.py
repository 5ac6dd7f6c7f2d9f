"""Flood control and the inbox's put in one Redis script: one round trip per webhook message.

Counted first and stored second, a message cost its ack two round trips to the same Redis; under
gevent each is a send, a wait and a wake-up of the hub, and with two processes on two cores
(bench/inbox.py, Slack events at 1,000/s offered, ``--no-workers``) the count alone cost the ack
0.2-0.3 ms of CPU and took its p99 from ~14 ms to 50-220 ms. One script does both, atomically: a
dropped message is never stored (and is marked seen, so that its retries are duplicates, not
messages let through: a platform retries a slow ack, and a flood slows acks), a notified one is
stored as its ``throttled`` form.

Only on one Redis: on a Redis Cluster a sender's windows, a conversation's and the inbox's shard
are in different slots, which one script cannot reach (``flood_gate_of`` counts stepwise there).
"""

from __future__ import annotations

from parley.core.envelope import Envelope, envelope_to_json
from parley.core.ratelimit import FloodCount, Verdict
from parley.stores.ratelimit import FLOOD, RedisFloodGate
from parley.stores.redis_inbox import RedisInbox
from parley.stores.redis_inbox_scripts import ENQUEUE

# KEYS[1..6]: PUT's (seen, queue, sched, ready, seq, depth), then FLOOD's. ARGV[1..3]: PUT's (dedupe
# ttl ms, envelope JSON, conversation), ARGV[4]: the throttled envelope's JSON, then FLOOD's.
# {verdict, 1 stored | 0 a duplicate or dropped}.
COUNTED_PUT = FLOOD + ENQUEUE + """
local verdict = flood(7, 5)
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1])
-- A drop is marked seen too: the platform's retry of it is a duplicate, not a message let through.
if verdict == 'drop' or fresh == false then return {verdict, 0} end
local envelope = ARGV[2]
if verdict == 'notify' then envelope = ARGV[4] end
enqueue(KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], envelope, ARGV[3])
return {verdict, 1}
"""


class RedisCountedPut:
    """``CountedPut`` for a ``RedisFloodGate`` and a ``RedisInbox`` on the same Redis."""

    def __init__(self, gate: RedisFloodGate, inbox: RedisInbox) -> None:
        self._gate = gate
        self._inbox = inbox
        self._script = inbox.client.register_script(COUNTED_PUT)

    def __call__(self, envelope: Envelope, throttled: Envelope, count: FloodCount) -> tuple[Verdict, bool]:
        put_keys, put_args = self._inbox.put_step(envelope)
        flood_keys, flood_args = self._gate.step(count.message_key, count.windows, notice_key=count.notice_key,
                                                 retry_seconds=count.retry_seconds)
        verdict, stored = self._inbox.store(self._script, [*put_keys, *flood_keys],
                                            [*put_args, envelope_to_json(throttled), *flood_args],
                                            conversation_id=envelope.conversation_id,
                                            stored=lambda answer: answer[1] == 1)
        return verdict.decode() if isinstance(verdict, bytes) else verdict, stored == 1
