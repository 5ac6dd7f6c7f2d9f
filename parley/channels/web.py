"""The web chat widget: JSON over HTTP from the browser, replies through a mailbox.

The widget's request waits for its own replies, but they travel the same way as every channel's:
the envelope goes through the inbox to a worker, and ``send`` publishes the replies to the mailbox
that the waiting request (or a reconnecting browser) reads.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from flask import Request, Response, jsonify

from parley.channels.base import BaseAdapter, Once, always, clean_text
from parley.channels.files import FileRules
from parley.channels.web_files import FILE_SECONDS, UPLOADS_PER_HOUR, fetched, kept_upload, uploads
from parley.channels.web_json import reply_json
from parley.channels.web_secrets import SECRET_HEADER, ConversationKeys, first_message_conversation
from parley.core.envelope import Attachment, Envelope, Reply
from parley.core.files import FileBody, FileStore
from parley.core.log import ConversationLog
from parley.core.mailbox import Mailbox
from parley.core.ratelimit import RateLimiter
from parley.core.texts import Texts, english
from parley.errors import (FileRefused, MalformedPayload, NotNow, OriginNotAllowed, RateLimited,
                           UnsupportedMediaType)

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8}){0,3}$")  # BCP 47, loosely


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Messages a browser (and an address, whatever its browsers) may send per ``window`` seconds."""

    per_browser: int = 20
    per_address: int = 120
    window: int = 60


class WidgetAdapter(BaseAdapter):
    name = "widget"

    def __init__(self, *, mailbox: Mailbox, log: ConversationLog, max_text_chars: int,
                 reply_timeout: float, allowed_origins: Sequence[str] = (),
                 rate_limiter: RateLimiter, limits: RateLimits = RateLimits(), keys: ConversationKeys,
                 legacy_claim_seconds: float = 0.0, texts: Texts | None = None,
                 with_person: Callable[[str, float], bool] = lambda conversation_id, at: False,
                 files: FileStore | None = None, uploads: FileStore | None = None) -> None:
        self.mailbox = mailbox
        self.files = files  # a rep's files, served at FILES_PATH
        # Customers' uploads, in a store of their own: a crowd of them never evicts a rep's file.
        self.uploads = uploads or files
        self.texts = texts or english()  # the ``texts:`` catalogue, for the refusals a browser shows
        self.keys = keys
        self.legacy_claim_seconds = legacy_claim_seconds  # see web_secrets.legacy_claim
        # True when a support rep already had the conversation at a given time: its messages then
        # go to the rep and get no immediate answer, so the request must not wait for one (the
        # rep's replies arrive as events).
        self.with_person = with_person
        self.log = log
        self.rate_limiter = rate_limiter
        self.limits = limits
        # Set on shutdown: open event streams end so the process stops without waiting them out.
        self.draining = threading.Event()
        self.max_text_chars = max_text_chars
        self.reply_timeout = reply_timeout
        self.allowed_origins = tuple(allowed_origins)
        self.origin_patterns = tuple(origin_pattern(p) for p in self.allowed_origins)

    def verify(self, request: Request) -> None:
        """The embedding site may use the widget, it sent JSON, the browser holds the conversation's
        secret (unless it starts one), and it is within its limits."""
        self.check_origin(request)
        if not request.is_json:
            raise UnsupportedMediaType(f"content type {request.mimetype!r}",
                                       public="send JSON (Content-Type: application/json)")
        self.check_rate(request)

    def authenticate(self, request: Request, conversation_id: str) -> None:
        """The caller holds ``conversation_id``'s secret (401 otherwise)."""
        self.keys.verify(conversation_id, request.headers.get(SECRET_HEADER))

    def parse(self, request: Request) -> list[Envelope]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise MalformedPayload("body is not a JSON object", public="body must be a JSON object")
        client_message_id = _optional_id(body, "client_message_id") or uuid.uuid4().hex
        conversation_id = _optional_id(body, "conversation_id")
        files: tuple[Attachment, ...] = ()
        if conversation_id is None:
            conversation_id, message_id = first_message_conversation(client_message_id)
        else:
            # Checked in ``check_rate`` already; again here, so that no path parses unverified.
            self.authenticate(request, conversation_id)
            message_id = f"{conversation_id}:{client_message_id}"
            files = uploads(self.uploads, conversation_id, body.get("files"))  # uploaded to /api/files
        text = clean_text(body.get("text"), max_chars=self.max_text_chars, allow_empty=bool(files))
        return [Envelope(channel=self.name, conversation_id=conversation_id,
                         message_id=message_id, sender=conversation_id, text=text, attachments=files,
                         language=browser_language(request, body))]

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        envelope = envelopes[0]
        conversation = {"conversation_id": envelope.conversation_id}
        body = request.get_json(silent=True)
        if isinstance(body, dict) and body.get("conversation_id") is None:
            # This message started the conversation: its secret goes to this browser only.
            conversation["secret"] = self.keys.secret(envelope.conversation_id)
        logged = self.log.replies_to(envelope)  # a worker may have been quicker than this request
        if logged is None and self.with_person(envelope.conversation_id, envelope.timestamp):
            return jsonify(**conversation, replies=[], with_person=True)
        replies = logged if logged is not None else self.mailbox.wait_for(
            envelope.conversation_id, envelope.message_id, timeout=self.reply_timeout)
        if replies is None:
            # Stored and queued, but slow: the browser picks the answer up from the history.
            response = jsonify(**conversation, replies=[], pending=True)
            response.status_code = 202
            return response
        # The log also holds the posts to the reps' thread: only the customer's own replies go back.
        mine = [reply for reply in replies if reply.channel == self.name]
        if not mine:
            return jsonify(**conversation, replies=[], with_person=True)
        return jsonify(**conversation, replies=[reply_json(r) for r in mine])

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        # One publish, all or nothing: no step to skip on a retry, so ``once`` is not needed.
        if replies:
            self.mailbox.publish(replies[0].conversation_id, replies)

    def send_file(self, reply: Reply, file: FileBody, *, key: str = "") -> None:
        """A rep's file, kept under an address derived from its send (the history finds it again)."""
        if self.files is None:
            raise FileRefused(file.name, reason="this widget keeps no files")
        token = self.files.keep(file, seconds=FILE_SECONDS, token=self.keys.file_token(key))
        # Live, each file is a message of its own (one refused shows no broken link); the history
        # shows the reply's files together, by the same addresses.
        shown = Attachment(content_type=file.content_type, name=file.name, size=len(file.data),
                           origin=self.name, ref=token)
        self.mailbox.publish(reply.conversation_id, [replace(reply, reply_id=key, files=(shown,))])

    def kept_file(self, token: str) -> FileBody | None:
        return self.files.get(token) if self.files is not None and token else None

    def has_file(self, token: str) -> bool:
        return self.files is not None and self.files.has(token)

    def keep_upload(self, request: Request, conversation_id: str, *, name: str, declared: str, data: bytes,
                    rules: FileRules) -> Attachment:
        """A customer's file, checked (a refusal in the browser's language) and kept for its message."""
        if self.uploads is None:
            raise UnsupportedMediaType("no file store", public=self.notice("ui_file_refused", request))
        return kept_upload(self.uploads, rules, conversation_id, name=name, declared=declared, data=data,
                           texts=lambda key: self.notice(key, request))

    def check_upload(self, request: Request, conversation_id: str) -> None:
        """Before the body is read: only a person reads files (409 outside a handoff), and uploads
        count against the conversation's messages and the address's own budget (429)."""
        if not self.with_person(conversation_id, time.time()):
            raise NotNow("a file outside a handoff", public=self.notice("media_only", request))
        address, limits = request.remote_addr or "unknown", self.limits
        wait = max(self.rate_limiter.hit(f"widget:conversation:{conversation_id}", limit=limits.per_browser,
                                         window=limits.window),
                   self.rate_limiter.hit(f"widget:uploads:{address}", limit=UPLOADS_PER_HOUR, window=3600))
        if wait:
            raise RateLimited(f"widget upload rate limit for {conversation_id}", retry_after=wait,
                              public=self.notice("ui_too_fast", request))

    def fetch_file(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        return fetched(self.uploads, attachment)

    def drain(self) -> None:
        """End the open event streams (browsers reconnect to another process)."""
        self.draining.set()
        self.mailbox.close()

    def check_origin(self, request: Request) -> None:
        """Refuse a browser on a site that may not embed the widget (CORS alone only hides answers)."""
        origin = request.headers.get("Origin")
        if origin and not self.origin_allowed(origin, request.host_url):
            raise OriginNotAllowed(f"origin {origin!r} is not in channels.widget.allowed_origins")

    def check_rate(self, request: Request) -> None:
        """Refuse (429) a browser over its limit, counted by conversation, else by address."""
        body = request.get_json(silent=True)  # Flask keeps it for ``parse``
        conversation_id = body.get("conversation_id") if isinstance(body, dict) else None
        address = request.remote_addr or "unknown"
        limits, hit = self.limits, self.rate_limiter.hit
        # A first message has no conversation yet: only its address's (wider) limit applies.
        waits = [hit(f"widget:address:{address}", limit=limits.per_address, window=limits.window)]
        if isinstance(conversation_id, str) and ID_PATTERN.match(conversation_id):  # else parse: 400
            # Only the secret's holder spends the conversation's budget: a leaked id cannot be
            # used to rate-limit the customer out of their own chat.
            if max(waits) == 0:
                self.authenticate(request, conversation_id)
            waits.append(hit(f"widget:conversation:{conversation_id}", limit=limits.per_browser,
                             window=limits.window))
        if max(waits):
            raise RateLimited(f"widget rate limit for {conversation_id or address}", retry_after=max(waits),
                              public=self.notice("ui_too_fast", request))

    def notice(self, key: str, request: Request) -> str:
        """A widget text in the language the page or browser states (a refusal comes before the
        conversation's own language is known)."""
        body = request.get_json(silent=True)
        stated = browser_language(request, body if isinstance(body, dict) else None)
        return self.texts.get(key, self.texts.supported(stated))

    def origin_allowed(self, origin: str, host_url: str) -> bool:
        """Same origin, or one matching an allowed pattern (``*`` in a subdomain or the port)."""
        if _origin(origin) == _origin(host_url):
            return True
        return any(pattern.match(origin) for pattern in self.origin_patterns)


def origin_pattern(pattern: str) -> re.Pattern[str]:
    """``https://*.acme.example`` or ``http://localhost:*`` as an anchored, case-blind regex.

    A ``*`` stands for one or more DNS labels in the host or for the digits of the port, never for
    a ``/`` or ``@``, so ``https://*.acme.example`` cannot match ``https://evil.example/.acme.example``.
    """
    if pattern == "*":
        return re.compile(r"https?://[^/@\s]+\Z", re.IGNORECASE)
    scheme, _, authority = pattern.partition("://")
    host, colon, port = authority.rpartition(":") if authority.count(":") == 1 else (authority, "", "")
    host_re = re.escape(host).replace(r"\*", r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
    port_re = (r"\d{1,5}" if port == "*" else re.escape(port)) if colon else ""
    return re.compile(f"{re.escape(scheme)}://{host_re}{colon}{port_re}\\Z", re.IGNORECASE)


def _optional_id(body: dict[str, object], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise MalformedPayload(f"bad {key}", public=f"{key} must be 8-64 letters, digits, '-' or '_'")
    return value


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def browser_language(request: Request, body: dict[str, Any] | None = None) -> str | None:
    """The page's language as the widget sends it (``language``, from ``<html lang>`` or the
    browser's ``navigator.language``), else the browser's Accept-Language; None when neither says."""
    stated = (body or {}).get("language")
    if isinstance(stated, str) and LANGUAGE_TAG.match(stated):
        return stated
    best = request.accept_languages.best
    return best if best and best != "*" and LANGUAGE_TAG.match(best) else None
