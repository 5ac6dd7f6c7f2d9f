"""The embedded inbox's dedupe keys: each put costs the same however many keys are kept (issue 16.8).

It once rebuilt its whole map on every put past 40,000 keys, under the inbox lock (6 ms a put at
40k, 17 ms at 80k). Counted here in keys examined, not in time: a put may look at the keys that
expired, and at one that has not, never at the rest.
"""

from __future__ import annotations

from collections import OrderedDict

from parley.core.envelope import Envelope
from parley.stores.memory_inbox import MemoryInbox


class Counting(OrderedDict):
    """The dedupe map, counting how many keys the inbox reads out of it."""

    examined = 0

    def items(self):  # noqa: ANN201 - OrderedDict's own signature
        for item in super().items():
            Counting.examined += 1
            yield item

    def __iter__(self):  # noqa: ANN204
        for key in super().__iter__():
            Counting.examined += 1
            yield key


def envelope(n: int) -> Envelope:
    return Envelope(channel="slack", conversation_id=f"slack:T1:D{n}", message_id=f"Ev{n:08d}", sender="U1",
                    text="hello")


def test_a_put_examines_a_few_keys_however_many_are_kept() -> None:
    now = [0.0]
    inbox = MemoryInbox(dedupe_ttl=100.0, capacity=1_000_000, clock=lambda: now[0])
    inbox._seen = Counting()
    for n in range(60_000):
        assert inbox.put(envelope(n))
    Counting.examined = 0

    for n in range(60_000, 61_000):
        assert inbox.put(envelope(n))

    assert Counting.examined <= 2 * 1_000, "each put looks at the oldest key, not at all 60,000"
    assert not inbox.put(envelope(5)), "and every key still answers for its message"


def test_expired_keys_are_forgotten_oldest_first() -> None:
    now = [0.0]
    inbox = MemoryInbox(dedupe_ttl=10.0, capacity=1_000_000, clock=lambda: now[0])
    for n in range(1_000):
        now[0] = n / 100  # 1,000 puts over 10 s
        inbox.put(envelope(n))

    now[0] = 15.0  # keys of the first 501 puts expired (a key lives 10 s)
    assert inbox.put(envelope(0)), "a redelivery past the horizon is new"
    assert not inbox.put(envelope(999)), "one within it is not"
    assert len(inbox._seen) == 499 + 1
