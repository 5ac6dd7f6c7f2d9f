"""The Inbox contract, for the embedded and the Redis inbox alike: order per conversation, no
head-of-line blocking, one holder per conversation, retries, dead letters; and, on Redis, recovery
from a dead process and fencing of one whose claim lapsed."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from parley.core.inbox import Claim, Inbox
from parley.errors import LostClaim
from parley.stores.memory_inbox import MemoryInbox
from parley.stores.redis_inbox import RedisInbox
from tests.conftest import make_envelope
from tests.integration.conftest import redis_inbox_factory, url_of
from tests.integration.redis_processes import wait_until

MakeInbox = Callable[..., Inbox]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("cluster", marks=pytest.mark.redis)])
def make_inbox(request: pytest.FixtureRequest) -> MakeInbox:
    """The embedded inbox has one view (one process); the Redis one (on one Redis, on a Redis
    Cluster) as many as asked for."""
    if request.param != "memory":
        return redis_inbox_factory(request, url_of(request, request.param))
    memory: list[MemoryInbox] = []

    def make(*, max_attempts: int = 3, visibility_timeout: float = 5.0) -> Inbox:
        if not memory:
            memory.append(MemoryInbox(dedupe_ttl=60, max_attempts=max_attempts))
        return memory[0]

    return make


def drain(inbox: Inbox, claim: Claim) -> list[str]:
    texts = []
    while (delivery := inbox.next(claim)) is not None:
        texts.append(delivery.envelope.text)
        inbox.done(delivery)
    return texts


def test_a_conversation_is_answered_in_order_by_one_holder(make_inbox: MakeInbox) -> None:
    inbox, other = make_inbox(), make_inbox()
    for text in ("first", "second", "third"):
        inbox.put(make_envelope(text, conversation_id="conv-a"))
    [claim] = inbox.claim(10, timeout=0.5)
    assert claim.conversation_id == "conv-a"
    assert other.claim(10, timeout=0.1) == []  # held: nobody else may take it meanwhile
    assert drain(inbox, claim) == ["first", "second", "third"]


def test_a_busy_conversation_does_not_hold_up_another(make_inbox: MakeInbox) -> None:
    inbox, other = make_inbox(), make_inbox()
    inbox.put(make_envelope("slow question", conversation_id="conv-slow"))
    [slow] = inbox.claim(1, timeout=0.5)
    slow_message = inbox.next(slow)  # being answered, for as long as its LLM takes
    inbox.put(make_envelope("follow-up", conversation_id="conv-slow"))
    inbox.put(make_envelope("quick question", conversation_id="conv-quick"))
    [quick] = other.claim(10, timeout=0.5)
    assert quick.conversation_id == "conv-quick"
    assert drain(other, quick) == ["quick question"]
    assert slow_message is not None
    inbox.done(slow_message)
    assert drain(inbox, slow) == ["follow-up"]  # the follow-up waited for its own conversation only


def test_a_message_after_the_claim_ended_makes_the_conversation_ready_again(make_inbox: MakeInbox) -> None:
    inbox = make_inbox()
    inbox.put(make_envelope("hello", conversation_id="conv-a"))
    [claim] = inbox.claim(1, timeout=0.5)
    assert drain(inbox, claim) == ["hello"]
    assert inbox.claim(1, timeout=0.1) == []
    inbox.put(make_envelope("again", conversation_id="conv-a"))
    [again] = inbox.claim(1, timeout=0.5)
    assert drain(inbox, again) == ["again"]


def test_a_failing_message_is_retried_before_the_next_then_dead_lettered(make_inbox: MakeInbox) -> None:
    inbox = make_inbox(max_attempts=3)
    inbox.put(make_envelope("poison", conversation_id="conv-a", message_id="EvPOISON"))
    inbox.put(make_envelope("after it", conversation_id="conv-a"))
    [claim] = inbox.claim(1, timeout=0.5)
    attempts = []
    for _ in range(3):
        delivery = inbox.next(claim)
        assert delivery is not None and delivery.envelope.text == "poison"
        attempts.append(delivery.attempt)
        dead = inbox.fail(delivery, "UpstreamError: Slack chat.postMessage failed: 500")
    assert attempts == [1, 2, 3] and dead is True
    assert drain(inbox, claim) == ["after it"]
    assert inbox.status()["dead_letters"] == 1  # type: ignore[attr-defined]


def test_a_released_claim_goes_to_another_worker_at_once(make_inbox: MakeInbox) -> None:
    inbox, other = make_inbox(), make_inbox()
    inbox.put(make_envelope("one", conversation_id="conv-a"))
    inbox.put(make_envelope("two", conversation_id="conv-a"))
    [claim] = inbox.claim(1, timeout=0.5)
    first = inbox.next(claim)
    assert first is not None
    inbox.done(first)
    inbox.release(claim)  # stopping between two messages
    [taken] = other.claim(1, timeout=0.5)
    second = other.next(taken)
    # Its first attempt, though the Redis inbox took it ahead with ``done`` (one round trip a message).
    assert second is not None and (second.envelope.text, second.attempt) == ("two", 1)
    other.done(second)
    assert other.next(taken) is None


def test_claims_are_spread_across_conversations_up_to_the_limit(make_inbox: MakeInbox) -> None:
    inbox = make_inbox()
    for number in range(20):
        inbox.put(make_envelope(f"question {number}", conversation_id=f"conv-{number}"))
    claimed: list[Claim] = []
    wait_until(lambda: claimed.extend(inbox.claim(20 - len(claimed), timeout=0.2)) or len(claimed) == 20,
               timeout=5, what="all twenty conversations to be claimed")
    assert len({claim.conversation_id for claim in claimed}) == 20


@pytest.mark.redis
def test_a_dead_process_s_conversation_is_taken_over_and_its_message_retried(
        make_redis_inbox: Callable[..., RedisInbox]) -> None:
    dying = make_redis_inbox(visibility_timeout=0.6)
    survivor = make_redis_inbox(visibility_timeout=0.6)
    dying.put(make_envelope("where is my order?", conversation_id="conv-a"))
    [claim] = dying.claim(1, timeout=0.5)
    stale = dying.next(claim)
    assert stale is not None and stale.attempt == 1
    dying.close()  # stops renewing, as a killed process would; the message was never finished
    taken: list[Claim] = []
    wait_until(lambda: taken.extend(survivor.claim(1, timeout=0.2)) or taken, timeout=10,
               what="the survivor to take the conversation over")
    retried = survivor.next(taken[0])
    assert retried is not None and (retried.envelope.text, retried.attempt) == ("where is my order?", 2)
    # The paused process wakes up: it may neither finish nor give up the message it lost.
    with pytest.raises(LostClaim):
        dying.done(stale)
    survivor.done(retried)
    assert survivor.next(taken[0]) is None


@pytest.mark.redis
def test_a_slow_answer_keeps_its_claim_past_the_visibility_timeout(
        make_redis_inbox: Callable[..., RedisInbox]) -> None:
    working = make_redis_inbox(visibility_timeout=0.6)
    watching = make_redis_inbox(visibility_timeout=0.6)
    working.put(make_envelope("a long question", conversation_id="conv-a"))
    [claim] = working.claim(1, timeout=0.5)
    delivery = working.next(claim)
    assert delivery is not None
    threading.Event().wait(1.5)  # the LLM takes a while; the keeper renews the claim meanwhile
    assert watching.claim(1, timeout=0.5) == []
    working.done(delivery)
    assert working.next(claim) is None


@pytest.mark.redis
@pytest.mark.parametrize("backend", ["redis", "cluster"])
def test_a_re_sent_done_counts_no_attempt_twice_and_loses_no_claim(request: pytest.FixtureRequest,
                                                                    backend: str) -> None:
    # The Redis client re-sends a command whose answer a timeout or a reset connection lost, so a
    # DONE may run twice: here it does, each time.
    inbox = redis_inbox_factory(request, url_of(request, backend))()
    for text in ("first", "second"):
        inbox.put(make_envelope(text, conversation_id="conv-resent"))
    [claim] = inbox.claim(10, timeout=0.5)
    first = inbox.next(claim)
    assert first is not None and first.attempt == 1
    inbox.done(first)
    inbox.done(first)
    second = inbox.next(claim)
    assert second is not None and (second.envelope.text, second.attempt) == ("second", 1)
    inbox.done(second)
    inbox.done(second)  # the claim ended in the first run: not a lost claim
    assert inbox.next(claim) is None
    inbox.put(make_envelope("third", conversation_id="conv-resent"))
    [again] = inbox.claim(10, timeout=0.5)
    third = inbox.next(again)
    assert third is not None and (third.envelope.text, third.attempt) == ("third", 1)
