"""Shared state on Redis for running many processes as one bot: sessions, mailbox, send ledger.

The inbox lives in ``redis_inbox.py`` (a queue per conversation, ready ones on streams). Every
key starts with the configured prefix, so several deployments (or test runs) can share one Redis.

Every command and script here touches one key, so each runs on one node of a Redis Cluster too
(``redis_topology.connect``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from typing import Any, get_args

import structlog

from parley.core.envelope import Reply, reply_from_json, reply_to_json
from parley.core.mailbox import EventKind, MailboxEvent
from parley.core.sessions import Session, Turn
from parley.errors import LostClaim, Unavailable
from parley.stores.redis_topology import (
    REDIS_ERRORS, Client, connect, is_cluster, refresh_slots, unavailable,
)
from parley.stores.wakeups import Wakeups

__all__ = ["RedisMailbox", "RedisSendLedger", "RedisSessionStore", "connect", "unavailable"]  # one entry point

logger = structlog.get_logger("parley.redis")


# KEYS: the session. ARGV: its JSON, ttl (s), fence entry and attempt ('' when unfenced). 1: saved;
# 0: refused, the stored state's fence is greater (a later holder saved it). One key: any cluster slot.
_SAVE_FENCED = """
local stored = redis.call('GET', KEYS[1])
if stored and ARGV[3] ~= '' then
  local ok, old = pcall(cjson.decode, stored)
  if ok and type(old) == 'table' and type(old.fence) == 'table' then
    local entry, take = tonumber(old.fence[1]), tonumber(old.fence[2])
    local new_entry, new_take = tonumber(ARGV[3]), tonumber(ARGV[4])
    if entry > new_entry or (entry == new_entry and take > new_take) then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""


class RedisSessionStore:
    """Sessions as JSON with a TTL of inactivity; history bounded again on every save, and a save
    refused when a later holder of the conversation saved it (``Session.fence``)."""

    def __init__(self, client: Client, *, prefix: str, ttl: int, max_turns: int, max_chars: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl
        self._max_turns = max_turns
        self._max_chars = max_chars
        self._save = client.register_script(_SAVE_FENCED)

    def key(self, conversation_id: str) -> str:
        return f"{self._prefix}session:{conversation_id}"

    def load(self, conversation_id: str) -> Session | None:
        with unavailable("load the session"):
            data = self._redis.get(self.key(conversation_id))
        return None if data is None else session_from_json(data)

    def save(self, session: Session) -> None:
        entry, take = session.fence if session.fence is not None else ("", "")
        with unavailable("save the session"):
            saved = self._save(keys=[self.key(session.conversation_id)],
                               args=[self._dump(session), self._ttl, entry, take])
        if not saved:
            raise LostClaim(f"conversation {session.conversation_id} was saved by a later claim")

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's state (GDPR erasure): its next message starts afresh."""
        with unavailable("erase the session"):
            self._redis.delete(self.key(conversation_id))

    def _dump(self, session: Session) -> str:
        bounded = session.with_turns((), max_turns=self._max_turns, max_chars=self._max_chars)
        return json.dumps(asdict(replace(bounded, updated_at=session.updated_at)), separators=(",", ":"),
                          default=dict)


def session_from_json(data: str | bytes) -> Session:
    return _session_from(json.loads(data))


def _session_from(raw: dict[str, Any]) -> Session:
    known = {field.name for field in fields(Session)}
    values = {key: value for key, value in raw.items() if key in known}
    values["history"] = tuple(Turn(**turn) for turn in values.get("history") or ())
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in values.items()}
    if values.get("before") is not None:
        values["before"] = _session_from(values["before"])
    return Session(**values)


# KEYS: the reply's key. ARGV: our token, sending ttl (ms). 1: go; 0: sent already; -1: another is sending.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if value == ARGV[1] then return 1 end
if value == 'sent' then return 0 end
return -1
"""

# KEYS: key. ARGV: token. Delete a key only while it still holds our token (the send ledger's
# claim, an inbox partition's lease): never one another process has taken since.
RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisSendLedger:
    """Each reply id goes out once, even when Redis drops a connection mid-claim.

    A claim is "sending:<this process>" for ``sending_ttl`` seconds, then "sent" for ``ttl`` after
    the send. A claim whose answer was lost reads as our own on the retry, so the reply is not lost;
    another process's claim means "retry later" (it may be sending now, or died, and its claim
    lapses). A send whose confirmation could not be written is remembered here, so this process
    does not send it again either.
    """

    def __init__(self, client: Client, *, prefix: str, ttl: int, sending_ttl: int = 120) -> None:
        self._redis = client
        self._prefix = prefix
        self._ttl = ttl
        self._sending_ms = sending_ttl * 1000
        self._token = f"sending:{uuid.uuid4().hex}"
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(RELEASE_IF_OWNER)
        self._unconfirmed: set[str] = set()

    def claim(self, reply_id: str) -> bool:
        if reply_id in self._unconfirmed:
            self.confirm(reply_id)
            return False
        with unavailable("claim the reply"):
            verdict = self._claim(keys=[self.key(reply_id)], args=[self._token, self._sending_ms])
        if verdict == -1:
            raise Unavailable(f"reply {reply_id} is being sent by another worker; trying again later")
        return verdict == 1

    def release(self, reply_id: str) -> None:
        with unavailable("release the reply"):
            self._release(keys=[self.key(reply_id)], args=[self._token])

    def confirm(self, reply_id: str) -> None:
        self._unconfirmed.add(reply_id)
        try:
            self._redis.set(self.key(reply_id), "sent", ex=self._ttl)
        except REDIS_ERRORS as exc:
            logger.warning("send_confirmation_pending", reply_id=reply_id, error=type(exc).__name__)
            return
        self._unconfirmed.discard(reply_id)

    def key(self, reply_id: str) -> str:
        return f"{self._prefix}sent:{reply_id}"


class RedisMailbox:
    """Per-conversation stream of web events, so a browser may wait on any process.

    Cursors are the stream's entry ids. Kept for ``ttl`` seconds after the last event, at most
    ``keep`` events. Each publish also names its conversation on one pub/sub channel; one listener
    per process wakes the requests and streams waiting on that conversation, which then read the
    stream. So thousands of waiting browsers cost one Redis connection per process, not one each.
    """

    def __init__(self, client: Client, *, prefix: str, keep: int = 200, ttl: int = 24 * 3600,
                 recheck_seconds: float = 5.0) -> None:
        self._redis = client
        self._prefix = prefix
        self._keep = keep
        self._ttl = ttl
        self._recheck = recheck_seconds  # a wake-up lost while pub/sub reconnects costs this at most
        self._wakeups = Wakeups()
        self._listener: threading.Thread | None = None
        self._listener_lock = threading.Lock()

    @property
    def channel(self) -> str:
        return f"{self._prefix}mailbox-events"

    def key(self, conversation_id: str) -> str:
        return f"{self._prefix}mailbox:{conversation_id}"

    def forget(self, conversation_id: str) -> None:
        """Drop the conversation's recent events (they hold replies' text): GDPR erasure."""
        with unavailable("erase the mailbox"):
            self._redis.delete(self.key(conversation_id))

    def publish(self, conversation_id: str, replies: Sequence[Reply]) -> None:
        self._append(conversation_id, {"kind": "replies",
                                       "replies": json.dumps([reply_to_json(r) for r in replies])})

    def publish_token(self, conversation_id: str, reply_id: str, text: str) -> None:
        self._append(conversation_id, {"kind": "token", "reply_id": reply_id, "text": text})

    def publish_typing(self, conversation_id: str) -> None:
        self._append(conversation_id, {"kind": "typing"})

    def wait_for(self, conversation_id: str, in_reply_to: str, timeout: float) -> list[Reply] | None:
        """The replies to one message; None when they did not come in time (or Redis is down: the
        message is stored, so the browser finds the answer in the history later)."""
        def answered() -> list[Reply] | None:
            for event in self._read(conversation_id, "0"):
                if event.kind == "replies" and event.replies[0].in_reply_to == in_reply_to:
                    return list(event.replies)
            return None

        self._listen()
        try:
            return self._wakeups.wait(conversation_id, answered, timeout, recheck=self._recheck)
        except REDIS_ERRORS as exc:
            logger.warning("mailbox_unavailable", conversation_id=conversation_id, error=type(exc).__name__)
            return None

    def after(self, conversation_id: str, cursor: str, timeout: float) -> list[MailboxEvent]:
        self._listen()
        with unavailable("read the mailbox"):
            return self._wakeups.wait(conversation_id, lambda: self._read(conversation_id, cursor or "0"),
                                      timeout, recheck=self._recheck)

    def close(self) -> None:
        """End every wait now (shutdown): open event streams finish, browsers reconnect elsewhere."""
        self._wakeups.close()

    def _read(self, conversation_id: str, cursor: str) -> list[MailboxEvent]:
        answer = self._redis.xread({self.key(conversation_id): cursor}, count=self._keep)
        if not answer:
            return []
        return [_event(entry_id, data) for entry_id, data in answer[0][1]]

    def _append(self, conversation_id: str, event: dict[str, str]) -> None:
        key = self.key(conversation_id)
        with unavailable("publish to the mailbox"), self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, event, maxlen=self._keep, approximate=True)  # type: ignore[arg-type]
            pipe.expire(key, self._ttl)
            if is_cluster(self._redis):  # a cluster pipeline takes keyed commands only
                pipe.execute()
                self._redis.publish(self.channel, conversation_id)
            else:
                pipe.publish(self.channel, conversation_id).execute()

    def _listen(self) -> None:
        with self._listener_lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._relay_wakeups, daemon=True,
                                                  name="parley-mailbox-listener")
                self._listener.start()

    def _relay_wakeups(self) -> None:
        failures = 0
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self.channel)
                failures = 0
                while True:  # not listen(): on a cluster its read outlives the socket timeout when idle
                    message = pubsub.get_message(timeout=5.0)
                    if message is not None:
                        self._wakeups.wake(message["data"].decode("utf-8", "replace"))
            except REDIS_ERRORS as exc:
                pubsub.close()  # its connection, before a new one is opened
                failures += 1
                if failures == 1:
                    logger.warning("mailbox_listener_reconnecting", error=type(exc).__name__)
                self._wakeups.wake_all()  # events may have come meanwhile: every waiter reads again
                time.sleep(min(5.0, 0.1 * 2 ** failures))
                if is_cluster(self._redis):  # the channel's node may have failed over: subscribe on the new one
                    refresh_slots(self._redis)


_EVENT_KINDS: dict[str, EventKind] = {kind: kind for kind in get_args(EventKind)}


def _event(entry_id: bytes, data: dict[bytes, bytes]) -> MailboxEvent:
    kind = _EVENT_KINDS[data[b"kind"].decode()]
    replies = tuple(reply_from_json(item) for item in json.loads(data.get(b"replies", b"[]")))
    reply_id = data.get(b"reply_id")
    return MailboxEvent(cursor=entry_id.decode(), kind=kind, replies=replies,
                        reply_id=reply_id.decode() if reply_id else None,
                        text=data.get(b"text", b"").decode())
