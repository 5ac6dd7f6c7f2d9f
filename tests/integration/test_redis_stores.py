"""The Redis inbox, sessions, mailbox and send ledger against the real Redis, each test on a key
prefix of its own."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from parley.core.envelope import Reply
from parley.core.sessions import Session, Turn
from parley.errors import LostClaim, Unavailable
from parley.settings import load_settings
from parley.stores.redis import RedisMailbox, RedisSendLedger, RedisSessionStore, connect
from parley.stores import redis_inbox_admin
from parley.stores.redis_inbox import GROUP, RedisInbox
from tests.conftest import make_envelope, make_settings
from tests.integration.redis_processes import REDIS_URL, delete_prefix, parley_env, wait_until, write_config
from tests.integration.test_server import PARLEY, free_port

pytestmark = pytest.mark.redis


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"
    yield prefix
    delete_prefix(connect(redis_url), prefix)


def test_a_retried_platform_message_is_stored_once(make_redis_inbox: Callable[..., RedisInbox]) -> None:
    inbox = make_redis_inbox()
    envelope = make_envelope("where is my order", message_id="Ev001")
    assert inbox.put(envelope) is True
    assert inbox.put(replace(envelope, text="where is my order (again)")) is False
    assert inbox.status()["queued"] == 1


def test_inbox_commands_show_replay_and_drop_dead_letters(
        make_redis_inbox: Callable[..., RedisInbox], inbox_prefix: str, redis_url: str, tmp_path: Path) -> None:
    inbox = make_redis_inbox(max_attempts=1)
    for number in (1, 2):
        inbox.put(make_envelope(f"message {number}", conversation_id="conv-dead", message_id=f"EvDEAD{number}"))
    [claim] = inbox.claim(1, timeout=0.1)
    for number in (1, 2):
        delivery = inbox.next(claim)
        assert delivery is not None
        assert inbox.fail(delivery, f"UpstreamError: failure {number}") is True
    assert inbox.next(claim) is None
    env = parley_env(write_config(tmp_path, key_prefix=inbox_prefix, max_attempts=1), tmp_path / "var",
                     REDIS_URL=redis_url)

    def parley(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PARLEY), "inbox", *args], env=env, capture_output=True, text=True, timeout=60)

    status = parley("status")
    assert status.returncode == 0, status.stderr
    assert "queued: 0  conversations in flight: 0  waiting for a worker: 0  dead letters: 2" in status.stdout
    assert "message EvDEAD1  attempts 1  reason: UpstreamError: failure 1" in status.stdout
    first, second = (letter.id for letter in redis_inbox_admin.dead_letters(inbox))
    assert parley("replay", first).returncode == 0
    assert parley("drop", second).returncode == 0
    assert redis_inbox_admin.dead_letters(inbox) == []
    [claim] = inbox.claim(1, timeout=0.1)
    replayed = inbox.next(claim)
    assert replayed is not None and replayed.envelope.message_id == "EvDEAD1"
    unknown = parley("drop", "1-1")
    assert unknown.returncode == 1
    assert "no dead letter 1-1" in unknown.stderr


def test_session_round_trip_with_ttl_and_bounded_history(prefix: str, redis_url: str) -> None:
    client = connect(redis_url)
    store = RedisSessionStore(client, prefix=prefix, ttl=300, max_turns=4, max_chars=8000)
    turns = tuple(Turn(role="customer" if n % 2 == 0 else "bot", text=f"turn {n}", at=float(n)) for n in range(10))
    store.save(Session(conversation_id="conv-1", channel="slack", route={"channel": "D1"}, history=turns,
                       handoff="waiting", claimed_by="U0REP"))
    loaded = store.load("conv-1")
    assert loaded is not None
    assert [turn.text for turn in loaded.history] == ["turn 6", "turn 7", "turn 8", "turn 9"]
    assert (loaded.route, loaded.handoff, loaded.claimed_by) == ({"channel": "D1"}, "waiting", "U0REP")
    assert 0 < client.ttl(store.key("conv-1")) <= 300
    assert store.load("conv-unknown") is None


def test_mailbox_delivers_across_clients_with_stream_cursors(prefix: str, redis_url: str) -> None:
    publisher = RedisMailbox(connect(redis_url), prefix=prefix)
    # Rechecking only after the timeout: the reply must come by the pub/sub wake-up.
    reader = RedisMailbox(connect(redis_url), prefix=prefix, recheck_seconds=60)
    reply = Reply(conversation_id="conv-1", channel="widget", text="Hello!", in_reply_to="conv-1:m1")
    threading.Timer(0.2, publisher.publish, args=("conv-1", [reply])).start()
    assert reader.wait_for("conv-1", "conv-1:m1", timeout=5) == [reply]
    publisher.publish_typing("conv-1")
    publisher.publish_token("conv-1", "r-2", "Hel")
    events = reader.after("conv-1", "0", timeout=1)
    assert [event.kind for event in events] == ["replies", "typing", "token"]
    assert events[2].text == "Hel" and events[2].reply_id == "r-2"
    assert reader.after("conv-1", events[-1].cursor, timeout=0.1) == []
    assert reader.wait_for("conv-1", "conv-1:never", timeout=0.2) is None


def test_send_ledger_lets_each_reply_out_once_and_never_loses_one(prefix: str, redis_url: str) -> None:
    here, there = (RedisSendLedger(connect(redis_url), prefix=prefix, ttl=60) for _ in range(2))
    assert here.claim("reply-1") is True
    assert here.claim("reply-1") is True  # our own claim whose answer we did not see: still ours to send
    with pytest.raises(Unavailable, match="being sent by another worker"):
        there.claim("reply-1")  # maybe sending right now: try later, neither skip nor send
    here.release("reply-1")  # the send failed
    assert there.claim("reply-1") is True
    there.confirm("reply-1")
    assert here.claim("reply-1") is False
    assert there.claim("reply-1") is False


def test_unreachable_redis_means_503_for_webhooks_and_readiness(tmp_path: Path) -> None:
    from parley.webhooks.app import create_app

    settings = make_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(Unavailable):
        RedisInbox(connect(settings.storage.redis_url.get_secret_value()),  # type: ignore[union-attr]
                   prefix="x:", dedupe_ttl=60, visibility_timeout=5, max_attempts=3).put(make_envelope("hi"))
    app = create_app(settings)
    try:
        client = app.test_client()
        ready = client.get("/readyz")
        assert (ready.status_code, ready.get_json()) == (503, {"error": "temporarily unavailable"})
        answer = client.post("/widget/api/messages", json={"text": "How do I reset my password?"})
        assert answer.status_code == 503
        assert "Redis" not in answer.get_data(as_text=True)  # the detail is for the log only
    finally:
        app.extensions["parley"].close()


def test_consumers_of_processes_long_gone_are_forgotten(make_redis_inbox: Callable[..., RedisInbox],
                                                         redis_url: str) -> None:
    inbox = make_redis_inbox(shards=1)
    gone = make_redis_inbox(shards=1)
    gone.put(make_envelope("hello"))
    [claim] = gone.claim(1, timeout=0.1)
    delivery = gone.next(claim)
    assert delivery is not None
    gone.done(delivery)
    assert gone.next(claim) is None
    gone.close()
    client = connect(redis_url)
    [old] = [c["name"] for c in client.xinfo_consumers(inbox.key(0, "ready"), GROUP)]
    threading.Event().wait(0.2)
    assert inbox.prune_consumers(idle_ms=100) == 1
    assert old not in [c["name"] for c in client.xinfo_consumers(inbox.key(0, "ready"), GROUP)]


def test_a_session_saved_by_a_later_claim_is_never_overwritten_by_an_earlier_one() -> None:
    client = connect(REDIS_URL)
    prefix = f"parley-test-fence-{uuid.uuid4().hex[:8]}:"
    store = RedisSessionStore(client, prefix=prefix, ttl=60, max_turns=20, max_chars=8000)
    try:
        base = Session(conversation_id="slack:T1:D1", channel="slack", customer="U1")
        store.save(replace(base, handoff_reason="first take", fence=(7, 1)))
        store.save(replace(base, handoff_reason="second take", fence=(7, 2)))  # took over the lapsed claim
        with pytest.raises(LostClaim):
            store.save(replace(base, handoff_reason="the paused first take, resumed", fence=(7, 1)))
        store.save(replace(base, handoff_reason="next message", fence=(8, 1)))
        with pytest.raises(LostClaim):
            store.save(replace(base, handoff_reason="stale", fence=(7, 3)))
        assert store.load("slack:T1:D1").handoff_reason == "next message"
        store.save(replace(base, handoff_reason="unfenced (a direct channel)"))
        assert store.load("slack:T1:D1").fence is None
    finally:
        delete_prefix(client, prefix)


def test_on_one_redis_acks_do_not_wait_for_a_replica_unless_told_to(tmp_path: Path) -> None:
    """One Redis usually has no replica: WAIT would hold every ack for its timeout, for nothing."""
    from structlog.testing import capture_logs

    from parley.wiring import redis_inbox_of

    prefix = f"parley-test-{uuid.uuid4().hex[:8]}:"

    def inbox_with(**storage: object) -> RedisInbox:
        config = write_config(tmp_path, key_prefix=prefix, **storage)
        return redis_inbox_of(load_settings(config, environ={"REDIS_URL": REDIS_URL,
                                                             "PARLEY_DATA_DIR": str(tmp_path / "var")}))

    with capture_logs() as logs:
        assert inbox_with().put(make_envelope("hello", message_id="EvWAIT1")) is True
    assert not [log for log in logs if log["event"] == "inbox_put_not_replicated"]
    told = inbox_with(redis_wait_replicas=1, redis_wait_timeout_ms=50)
    try:
        with capture_logs() as logs:
            assert told.put(make_envelope("hello again", message_id="EvWAIT2")) is True  # stored and acked
        [warning] = [log for log in logs if log["event"] == "inbox_put_not_replicated"]
        assert (warning["replicas"], warning["wanted"], warning["log_level"]) == (0, 1, "warning")
        assert told.status()["queued"] == 2
    finally:
        delete_prefix(connect(REDIS_URL), prefix)
