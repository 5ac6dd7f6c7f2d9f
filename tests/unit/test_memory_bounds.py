"""The embedded mode's in-process state stays bounded however many conversations clients open."""

from __future__ import annotations

from parley.core.envelope import Reply
from parley.core.sessions import Session
from parley.stores.memory import MemoryMailbox, MemorySessionStore


def test_idle_sessions_are_swept_when_others_are_saved() -> None:
    now = [1000.0]
    store = MemorySessionStore(ttl=60, clock=lambda: now[0])
    for n in range(50):
        store.save(Session(conversation_id=f"idle-{n}", channel="web"))
    now[0] += 61
    store.save(Session(conversation_id="active", channel="web"))
    assert len(store) == 1
    assert store.load("active") is not None


def test_sessions_are_capped_by_count_dropping_the_least_recent() -> None:
    store = MemorySessionStore(ttl=3600, max_sessions=3)
    for name in ("a", "b", "c", "d"):
        store.save(Session(conversation_id=name, channel="web"))
    assert len(store) == 3
    assert store.load("a") is None
    assert store.load("d") is not None


def test_a_saved_session_lives_ttl_after_its_last_save() -> None:
    now = [0.0]
    store = MemorySessionStore(ttl=60, clock=lambda: now[0])
    store.save(Session(conversation_id="c", channel="web"))
    now[0] += 50
    store.save(Session(conversation_id="c", channel="web"))
    now[0] += 50
    assert store.load("c") is not None


def test_mailbox_forgets_conversations_idle_past_their_ttl() -> None:
    now = [0.0]
    mailbox = MemoryMailbox(ttl=600, clock=lambda: now[0])
    for n in range(20):
        mailbox.publish_typing(f"visitor-{n}")
    now[0] += 500
    mailbox.publish_typing("visitor-0")  # still talking: its clock restarts
    now[0] += 200
    mailbox.publish_typing("new")
    assert len(mailbox) == 2
    assert [e.kind for e in mailbox.after("visitor-0", "0", timeout=0)] == ["typing", "typing"]
    assert mailbox.after("visitor-1", "0", timeout=0) == []


def test_mailbox_is_capped_by_conversation_count() -> None:
    mailbox = MemoryMailbox(max_conversations=5)
    for n in range(100):
        mailbox.publish_typing(f"visitor-{n}")
    assert len(mailbox) == 5
    reply = Reply(channel="web", conversation_id="visitor-99", text="hi", reply_id="r1", in_reply_to="m1")
    mailbox.publish("visitor-99", [reply])
    assert mailbox.wait_for("visitor-99", "m1", timeout=0) == [reply]
