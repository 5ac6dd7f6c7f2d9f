"""``/widget``: the demo page, the embeddable script and the browser's JSON and event-stream API.

Other sites embed the widget, so the API answers CORS (flask-cors, origins from
``channels.widget.allowed_origins``) and the demo page may be framed only by those sites.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import structlog
from flask import Blueprint, Response, current_app, jsonify, render_template, request, send_from_directory
from flask.blueprints import BlueprintSetupState
from flask_cors import CORS

from parley.channels.web import ID_PATTERN, WidgetAdapter, browser_language, origin_pattern
from parley.channels.web_json import history_messages, to_sse
from parley.channels.web_secrets import (REFUSED, SECRET_HEADER, STREAM_TOKEN_SECONDS, legacy_claim,
                                         new_conversation_id)
from parley.core.mailbox import Mailbox
from parley.core.texts import UI_KEYS
from parley.errors import InvalidSignature, MalformedPayload, NotFound, PayloadTooLarge, RateLimited
from parley.webhooks.files import file_response
from parley.webhooks.intake import receive
from parley.wiring import Services

STATIC = Path(__file__).parent / "static" / "widget"
STREAMS_FULL_RETRY_SECONDS = 10  # how long a browser refused a stream waits before asking again
STREAM_SECONDS = 55.0  # then the browser reconnects (proxies and load balancers cut long requests)
HEARTBEAT_SECONDS = 15.0  # a comment line keeps proxies from closing an idle stream
CURSOR = re.compile(r"^[0-9]{1,20}(-[0-9]{1,20})?$")  # a counter, or a Redis stream id

logger = structlog.get_logger("parley.widget")
bp = Blueprint("widget", __name__, url_prefix="/widget", template_folder="templates")


@bp.record_once
def _allow_embedding_sites(state: BlueprintSetupState) -> None:
    services: Services = state.app.extensions["parley"]
    origins = [origin_pattern(o) for o in services.settings.channels.widget.allowed_origins]
    # Browsers ask before a cross-site JSON POST (preflight); Retry-After must be readable on a 429.
    CORS(state.app, resources={r"/widget/api/*": {"origins": origins}}, expose_headers=["Retry-After"],
         methods=["GET", "POST"], allow_headers=["Content-Type", "Last-Event-ID", SECRET_HEADER],
         max_age=600, supports_credentials=False)
    # An open stream is a greenlet waiting on its conversation's wake-up: cheap, but not free (about
    # 20 KB each, bench/streams.py); the cap per process bounds the memory a crowd of panels takes.
    state.app.extensions["parley.widget_streams"] = threading.BoundedSemaphore(
        services.settings.channels.widget.max_streams)


def _services() -> Services:
    return current_app.extensions["parley"]


def _adapter() -> WidgetAdapter:
    return _services().widget


@bp.get("")
def demo() -> Response:
    bot = _services().settings.bot
    response = Response(render_template("widget/demo.html", title=bot.title, bot=bot.name))
    ancestors = " ".join(["'self'", *_services().settings.channels.widget.allowed_origins])
    response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    return response


@bp.get("/widget.js")
def script() -> Response:
    return send_from_directory(STATIC, "widget.js", mimetype="text/javascript", max_age=300)


@bp.get("/api/config")
def config() -> Response:
    """The widget's look and words, in the customer's language (the page's or the browser's)."""
    settings = _services().settings
    bot, texts = settings.bot, settings.catalog
    hint = request.args.get("language", "")
    language = texts.supported(browser_language(request, {"language": hint[:35]})) or texts.default
    return jsonify(title=bot.title, greeting=texts.get("greeting", language), language=language,
                   quick_replies=list(texts.replies(language)),
                   texts={key: texts.get(key, language) for key in UI_KEYS},
                   theme={"primary": bot.theme.primary}, max_length=settings.limits.max_text_chars,
                   max_file_mb=settings.handoff.files.max_mb)


@bp.post("/api/messages")
def messages() -> Response:
    return receive(_adapter(), _services())


@bp.post("/api/files")
def upload() -> tuple[Response, int]:
    """A customer's file (multipart ``file``; ``?conversation_id=``), kept for the message that
    carries it (``files`` in /api/messages): checked now, so the browser hears at once what cannot go.
    Who asks, and how often, is checked before a byte of the body is read."""
    adapter = _adapter()
    adapter.check_origin(request)
    conversation_id = request.args.get("conversation_id", "")
    if not ID_PATTERN.match(conversation_id):
        raise MalformedPayload("upload without conversation_id", public="conversation_id is missing or malformed")
    adapter.authenticate(request, conversation_id)
    adapter.check_upload(request, conversation_id)
    part = request.files.get("file")
    if part is None:
        raise MalformedPayload("upload without a file part", public="send the file as the multipart field 'file'")
    kept = adapter.keep_upload(request, conversation_id, name=part.filename or "", declared=part.mimetype or "",
                               data=part.read(), rules=_services().pipeline.outbox.files)
    logger.info("widget_file_kept", conversation_id=conversation_id, size=kept.size)
    return jsonify(file=kept.ref, name=kept.name, type=kept.content_type, size=kept.size), 201


UPLOAD_ENDPOINT = "widget.upload"


def upload_limit() -> int:
    """A customer's file within ``handoff.files.max_mb``, and room for the form around it."""
    return _services().pipeline.outbox.files.max_bytes + 16 * 1024


def too_big() -> PayloadTooLarge:
    """The refusal of an upload over the limit, in the browser's language."""
    limit = f"{_services().pipeline.outbox.files.max_bytes / 1_000_000:g}"
    return PayloadTooLarge(f"upload of {request.content_length} bytes",
                           public=_adapter().notice("ui_file_too_big", request).replace("{max}", limit))


@bp.post("/api/conversations")
def start() -> tuple[Response, int]:
    """A new conversation's id and secret, before its first message (so the browser can listen first).

    With ``conversation_id`` in the body, a browser holding only an id from before secrets existed
    asks for that conversation's secret: granted once, for an open chat (``legacy_claim``).
    """
    adapter = _adapter()
    adapter.check_origin(request)
    # Stateless and cheap, but a claim reads the log: an address gets as many starts as messages.
    limits, address = adapter.limits, request.remote_addr or "unknown"
    wait = adapter.rate_limiter.hit(f"widget:start:{address}", limit=limits.per_address,
                                    window=limits.window)
    if wait:
        raise RateLimited(f"widget start rate limit for {address}", retry_after=wait,
                          public=adapter.notice("ui_too_fast", request))
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise MalformedPayload("start body is not a JSON object", public="body must be a JSON object")
    claimed = body.get("conversation_id")
    if claimed is None:
        conversation_id = new_conversation_id()
    elif not isinstance(claimed, str) or not ID_PATTERN.match(claimed):
        raise MalformedPayload("bad conversation_id", public="conversation_id is malformed")
    elif legacy_claim(claimed, log=_services().log, limiter=adapter.rate_limiter, channel=adapter.name,
                      within=adapter.legacy_claim_seconds):
        conversation_id = claimed
        logger.info("legacy_conversation_claimed", conversation_id=conversation_id)
    else:
        raise InvalidSignature(f"conversation {claimed} may not be claimed without its secret",
                               public=REFUSED)
    return jsonify(conversation_id=conversation_id, secret=adapter.keys.secret(conversation_id),
                   **_stream_pass(adapter, conversation_id)), 201


@bp.post("/api/conversations/<conversation_id>/stream-token")
def stream_token(conversation_id: str) -> Response:
    """A fresh pass for the event stream, for the holder of the conversation's secret."""
    adapter = _adapter()
    adapter.check_origin(request)
    adapter.authenticate(request, conversation_id)
    return jsonify(_stream_pass(adapter, conversation_id))


def _stream_pass(adapter: WidgetAdapter, conversation_id: str) -> dict[str, object]:
    return {"stream_token": adapter.keys.stream_token(conversation_id), "expires_in": STREAM_TOKEN_SECONDS}


@bp.get("/api/conversations/<conversation_id>")
def conversation(conversation_id: str) -> Response:
    _adapter().authenticate(request, conversation_id)
    # Started (its secret issued) but nothing said yet: an empty history, not an unknown conversation.
    transcript = _services().log.transcript(conversation_id, "widget") or []
    adapter = _adapter()
    shown = [message for logged in transcript
             for message in history_messages(logged, adapter.keys.file_token, adapter.has_file)]
    return jsonify(conversation_id=conversation_id, messages=shown)


@bp.get("/api/conversations/<conversation_id>/events")
def events(conversation_id: str) -> Response:
    """Replies, streamed tokens and "typing" as Server-Sent Events, for one bounded stretch."""
    adapter = _adapter()
    adapter.check_origin(request)
    # An id not stored yet is fine: a browser listens for its first answer while sending its first
    # message. A stream tells nothing about whether a conversation exists.
    if not ID_PATTERN.match(conversation_id):
        raise NotFound(f"conversation {conversation_id!r}", public="unknown conversation")
    # EventSource sends no headers: the browser passes a stream token; other clients may send the secret.
    token = request.args.get("token")
    if token is not None:
        adapter.keys.verify_stream_token(conversation_id, token)
    else:
        adapter.authenticate(request, conversation_id)
    # Resume after what the browser saw; a fresh stream starts at the end (no replay of old tokens).
    seen = request.headers.get("Last-Event-ID") or request.args.get("cursor") or ""
    slots: threading.BoundedSemaphore = current_app.extensions["parley.widget_streams"]
    if not slots.acquire(blocking=False):
        # The browser falls back to re-fetching the history, and asks again after Retry-After.
        logger.warning("request_refused", status=503, error="StreamsFull", conversation_id=conversation_id)
        response = jsonify(error="too many open event streams; retry later")
        response.status_code = 503
        response.headers["Retry-After"] = str(STREAMS_FULL_RETRY_SECONDS)
        return response
    try:
        cursor = seen if CURSOR.match(seen) else _end_of(_adapter().mailbox, conversation_id)
        stream = _stream(_adapter(), conversation_id, cursor, seconds=STREAM_SECONDS)
        response = Response(stream, mimetype="text/event-stream",
                            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    except BaseException:
        slots.release()
        raise
    # The server closes every response it took, streamed to the end or cut off by the browser.
    response.call_on_close(slots.release)
    return response


@bp.post("/api/feedback")
def feedback() -> tuple[Response, int]:
    """Thumbs up or down on one bot answer; voting again changes the vote."""
    _adapter().check_origin(request)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MalformedPayload("feedback body is not a JSON object", public="body must be a JSON object")
    conversation_id, message_id, score = body.get("conversation_id"), body.get("message_id"), body.get("score")
    if not isinstance(conversation_id, str) or not ID_PATTERN.match(conversation_id):
        raise MalformedPayload("bad conversation_id", public="conversation_id is missing or malformed")
    _adapter().authenticate(request, conversation_id)
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= 200:
        raise MalformedPayload("bad message_id", public="message_id is missing or malformed")
    if score not in (1, -1) or isinstance(score, bool):
        raise MalformedPayload(f"bad score {score!r}", public="score must be 1 or -1")
    stored = _services().log.record_feedback(conversation_id=conversation_id, channel="widget",
                                             message_id=message_id, score=score)
    if not stored:
        raise NotFound(f"message {message_id} in {conversation_id}", public="unknown message")
    logger.info("feedback_stored", conversation_id=conversation_id, message_id=message_id, score=score)
    return jsonify(status="stored"), 201


@bp.get("/api/files/<token>")
def kept_file(token: str) -> Response:
    """A rep's file, by the address only its conversation's history and events carry. A customer's
    upload ("<conversation>.<random>") is no one's to download: it goes to the reps' thread only."""
    kept = _adapter().kept_file(token[:100]) if "." not in token else None
    if kept is None:
        raise NotFound("no such file (it expired, or never was)")
    return file_response(kept)


def _end_of(mailbox: Mailbox, conversation_id: str) -> str:
    kept = mailbox.after(conversation_id, "0", timeout=0)
    return kept[-1].cursor if kept else "0"


def _stream(adapter: WidgetAdapter, conversation_id: str, cursor: str, *, seconds: float) -> Iterator[str]:
    yield "retry: 2000\n\n"
    now = time.monotonic()
    deadline, quiet_since = now + seconds, now
    # A wait ends on an event for this conversation, at the heartbeat, or when the process drains.
    while not adapter.draining.is_set() and (left := deadline - time.monotonic()) > 0:
        events = adapter.mailbox.after(conversation_id, cursor, timeout=min(HEARTBEAT_SECONDS, left))
        for event in events:
            cursor = event.cursor
            yield to_sse(event, time.time(), adapter.keys.file_token)
        if events or time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
            if not events:
                yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
