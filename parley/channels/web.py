"""The web chat widget: JSON over HTTP from the browser, replies through a mailbox.

The widget's request waits for its own replies, but they travel the same way as every channel's:
the envelope goes through the inbox to a worker, and ``send`` publishes the replies to the mailbox
that the waiting request (or a reconnecting browser) reads.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

from flask import Request, Response, jsonify

from parley.channels.base import clean_text
from parley.core.envelope import Envelope, Reply
from parley.core.log import ConversationLog
from parley.errors import MalformedPayload, NotFound, OriginNotAllowed, UnsupportedMediaType

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxEvent:
    """Something a browser should see: a batch of replies, a streamed token, or "typing"."""

    cursor: str
    kind: Literal["replies", "token", "typing"]
    replies: tuple[Reply, ...] = ()
    reply_id: str | None = None
    text: str = ""


class Mailbox(Protocol):
    """Where replies for web clients wait to be picked up, shared by every process."""

    def publish(self, conversation_id: str, replies: Sequence[Reply]) -> None: ...

    def publish_token(self, conversation_id: str, reply_id: str, text: str) -> None: ...

    def publish_typing(self, conversation_id: str) -> None: ...

    def wait_for(self, conversation_id: str, in_reply_to: str, timeout: float) -> list[Reply] | None:
        """The replies to one message, waiting up to ``timeout``; None when they did not come."""
        ...

    def after(self, conversation_id: str, cursor: str, timeout: float) -> list[MailboxEvent]:
        """Events newer than ``cursor`` ("0" for everything kept), waiting up to ``timeout``."""
        ...


class WidgetAdapter:
    name = "widget"

    def __init__(self, *, mailbox: Mailbox, log: ConversationLog, max_text_chars: int,
                 reply_timeout: float, allowed_origins: Sequence[str] = ()) -> None:
        self.mailbox = mailbox
        self.log = log
        self.max_text_chars = max_text_chars
        self.reply_timeout = reply_timeout
        self.allowed_origins = tuple(allowed_origins)

    def verify(self, request: Request) -> None:
        origin = request.headers.get("Origin")
        if origin and not self.origin_allowed(origin, request.host_url):
            raise OriginNotAllowed(f"origin {origin!r} is not in channels.widget.allowed_origins")
        if not request.is_json:
            raise UnsupportedMediaType(f"content type {request.mimetype!r}",
                                       public="send JSON (Content-Type: application/json)")

    def parse(self, request: Request) -> list[Envelope]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise MalformedPayload("body is not a JSON object", public="body must be a JSON object")
        text = clean_text(body.get("text"), max_chars=self.max_text_chars)
        message_id = _optional_id(body, "client_message_id") or uuid.uuid4().hex
        conversation_id = _optional_id(body, "conversation_id")
        if conversation_id is None:
            conversation_id = new_conversation_id(message_id)
        elif self.log.transcript(conversation_id, self.name) is None:
            raise NotFound(f"conversation {conversation_id}", public="unknown conversation")
        return [Envelope(channel=self.name, conversation_id=conversation_id,
                         message_id=f"{conversation_id}:{message_id}", sender=conversation_id, text=text)]

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        envelope = envelopes[0]
        replies = self.log.replies_to(envelope) or self.mailbox.wait_for(
            envelope.conversation_id, envelope.message_id, timeout=self.reply_timeout)
        if replies is None:
            # Stored and queued, but slow: the browser picks the answer up from the history.
            response = jsonify(conversation_id=envelope.conversation_id, replies=[], pending=True)
            response.status_code = 202
            return response
        return jsonify(conversation_id=envelope.conversation_id, replies=[reply_json(r) for r in replies])

    def send(self, replies: Sequence[Reply]) -> None:
        if replies:
            self.mailbox.publish(replies[0].conversation_id, replies)

    def origin_allowed(self, origin: str, host_url: str) -> bool:
        """Same origin, or one matching an allowed pattern (``*`` in a subdomain or the port)."""
        if _origin(origin) == _origin(host_url):
            return True
        return any(fnmatch.fnmatchcase(origin, pattern) for pattern in self.allowed_origins)


def new_conversation_id(client_message_id: str) -> str:
    # Derived from the browser's first message id, so a retried first message (same id) lands in
    # the same conversation instead of opening a second one.
    return "w" + hashlib.sha256(f"conversation:{client_message_id}".encode()).hexdigest()[:31]


def reply_json(reply: Reply) -> dict[str, object]:
    return {
        "id": reply.reply_id,
        "text": reply.text,
        "quick_replies": list(reply.quick_replies),
        "sources": [{"id": s.id, "title": s.title} for s in reply.meta.sources],
        "confidence": reply.meta.confidence,
        "engine": reply.meta.engine,
        "author": reply.author,
    }


def _optional_id(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not _ID.match(value):
        raise MalformedPayload(f"bad {key}", public=f"{key} must be 8-64 letters, digits, '-' or '_'")
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
