"""Who may read and write a widget conversation: the browser that holds its secret.

A conversation's id travels in logs, Slack buttons and URLs, so it is not a credential. The secret
is an HMAC of the id under the server's widget key: any pod verifies it without storing anything
per conversation, and the browser keeps it in ``localStorage`` beside the id and sends it in the
``X-Parley-Secret`` header, never in a URL (URLs reach access logs).

``EventSource`` cannot send headers, so the event stream takes a stream token in its query string
instead: an HMAC of the id and an expiry minutes away, which is not the secret and cannot be turned
into it, so an access log holds at most a read-only pass that soon expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable

from parley.core.log import ConversationLog
from parley.core.ratelimit import RateLimiter
from parley.errors import InvalidSignature

SECRET_HEADER = "X-Parley-Secret"
STREAM_TOKEN_SECONDS = 600
# Ids the server makes: "w" and 32 hex digits. Before secrets existed the browser chose the id
# ("w" and its first message's UUID, with dashes), so any other "w" id predates them.
ISSUED_ID = re.compile(r"^w[0-9a-f]{32}$")
LEGACY_CLAIM_MEMORY_SECONDS = 366 * 24 * 3600
REFUSED = "this conversation needs its secret (X-Parley-Secret); start a new one if it is lost"
STALE_PASS = "stream token expired or wrong; ask for a new one"


class ConversationKeys:
    """Issues and checks conversation secrets and stream tokens; the key never leaves this object.

    ``key`` is the key or how to get it: read on first use, so a process starts (and answers 503
    until it is back) while the store that keeps the key is down.
    """

    __slots__ = ("_key", "_load", "_lock")

    def __init__(self, key: bytes | Callable[[], bytes]) -> None:
        self._load: Callable[[], bytes] = key if callable(key) else (lambda: key)
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "ConversationKeys(key=[redacted])"

    def _current_key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._load()
            return self._key

    def secret(self, conversation_id: str) -> str:
        return _b64(self._mac(b"secret", conversation_id.encode("utf-8")))

    def verify(self, conversation_id: str, presented: str | None) -> None:
        """Raise ``InvalidSignature`` (401) unless ``presented`` is the conversation's secret."""
        # Constant time: a timing difference must not reveal how much of a guess was right.
        if not presented or not hmac.compare_digest(self.secret(conversation_id).encode(),
                                                    presented.encode("utf-8", "replace")):
            raise InvalidSignature(f"{'wrong' if presented else 'no'} secret for conversation "
                                   f"{conversation_id}", public=REFUSED)

    def stream_token(self, conversation_id: str, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + STREAM_TOKEN_SECONDS)
        return f"{expires}.{self._stream_mac(conversation_id, expires)}"

    def verify_stream_token(self, conversation_id: str, token: str, *, now: float | None = None) -> None:
        """Raise ``InvalidSignature`` unless ``token`` was issued for this conversation and is fresh."""
        expires, _, mac = token.partition(".")
        now = time.time() if now is None else now
        fresh = expires.isdigit() and len(expires) <= 12 and int(expires) > now
        valid = fresh and hmac.compare_digest(self._stream_mac(conversation_id, int(expires)).encode(),
                                              mac.encode("utf-8", "replace"))
        if not valid:
            raise InvalidSignature(f"{'wrong' if fresh else 'stale'} stream token for conversation "
                                   f"{conversation_id}", public=STALE_PASS)

    def _stream_mac(self, conversation_id: str, expires: int) -> str:
        return _b64(self._mac(b"stream", f"{conversation_id}\0{expires}".encode("utf-8")))[:32]

    def file_token(self, send_key: str) -> str:
        """The address of a file sent to a widget ("<reply id>#file<n>"): the same each time it is
        asked (the history finds the file again), and guessed by nobody without the key."""
        return _b64(self._mac(b"file", send_key.encode("utf-8")))

    def _mac(self, purpose: bytes, message: bytes) -> bytes:
        # One key, separate purposes: a stream token can never pass for a secret or the reverse.
        return hmac.new(self._current_key(), purpose + b"\0" + message, hashlib.sha256).digest()


def new_conversation_id() -> str:
    return "w" + secrets.token_hex(16)


def first_message_conversation(client_message_id: str) -> tuple[str, str]:
    """The conversation and message ids of a first message posted without a conversation.

    Derived from the browser's message id, so a retried first message (same id) lands in the same
    conversation instead of opening a second one; hashed, so that the ids the logs show do not
    give away the message id that would let anyone else "retry" it and be handed the secret.
    """
    digest = hashlib.sha256(f"first\0{client_message_id}".encode()).hexdigest()
    conversation_id = "w" + digest[:32]
    return conversation_id, f"{conversation_id}:first"


def legacy_claim(conversation_id: str, *, log: ConversationLog, limiter: RateLimiter, channel: str,
                 within: float, now: float | None = None) -> bool:
    """May a browser that holds only a pre-secret id have its secret? Once, and only for an open chat.

    Chats opened before secrets existed must not all break, but an id alone must not be enough:
    only an id of the old shape, whose customer wrote less than ``within`` seconds ago (an open
    chat), and only the first claim (remembered in the shared limiter store). A leaked id of a chat
    its browser re-attached is worth nothing, and one of a chat left that long can no longer be
    claimed at all.
    """
    if within <= 0 or not conversation_id.startswith("w") or ISSUED_ID.match(conversation_id):
        return False
    transcript = log.transcript(conversation_id, channel)
    last_in = max((m.created_at for m in transcript or () if m.direction == "in"), default=None)
    if last_in is None or (time.time() if now is None else now) - last_in > within:
        return False
    return limiter.hit(f"widget:legacy-claim:{conversation_id}", limit=1,
                       window=LEGACY_CLAIM_MEMORY_SECONDS) == 0


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
