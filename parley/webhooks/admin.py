"""``/admin``: support tools, behind ``PARLEY_ADMIN_TOKEN`` (a bearer token); off when it is unset."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import structlog
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import SecretStr

from parley.channels.base import NOT_UNICODE, clean_text, encodable
from parley.core.envelope import AnswerMeta, Envelope, Reply
from parley.errors import ChannelDisabled, ConfigError, InvalidSignature, MalformedPayload, NotFound
from parley.wiring import Services

logger = structlog.get_logger("parley.admin")
bp = Blueprint("admin", __name__, url_prefix="/admin")


def _services() -> Services:
    return current_app.extensions["parley"]


@bp.before_request
def _require_token() -> None:
    token = _services().settings.admin.token
    if token is None:
        raise ChannelDisabled("admin API is off: PARLEY_ADMIN_TOKEN is not set")
    require_bearer(token, "admin API")


def require_bearer(token: SecretStr, surface: str) -> None:
    """``Authorization: Bearer <token>`` exactly: a bare token or another scheme is refused."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    matches = hmac.compare_digest(given.encode(), token.get_secret_value().encode())
    if scheme.lower() != "bearer" or not matches:
        raise InvalidSignature(f"{surface}: wrong or missing bearer token")


@bp.post("/conversations/<conversation_id>/messages")
def post_message(conversation_id: str) -> tuple[Response, int]:
    """A support rep writes into a widget conversation: logged, and shown live in the browser."""
    services = _services()
    if not services.log.has_conversation(conversation_id, "widget"):
        raise NotFound(f"widget conversation {conversation_id}", public="unknown conversation")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MalformedPayload("admin message body is not a JSON object", public="body must be a JSON object")
    text = clean_text(body.get("text"), max_chars=services.settings.limits.max_text_chars)
    author = body.get("author")
    if not isinstance(author, str) or not 1 <= len(author.strip()) <= 80:
        raise MalformedPayload("bad author", public="author must be the rep's name (1-80 characters)")
    if not encodable(author):
        raise MalformedPayload("author with a lone surrogate", public=NOT_UNICODE)
    reply = Reply(conversation_id=conversation_id, channel="widget", text=text, author=author.strip(),
                  meta=AnswerMeta(engine="person"))
    # A rep's message answers no single customer message: it is logged against a marker of its own.
    marker = Envelope(channel="widget", conversation_id=conversation_id, message_id=f"rep:{reply.reply_id}",
                      sender=reply.author or "", text="")
    services.log.record_replies(marker, [reply])
    services.pipeline.outbox.deliver([reply])
    logger.info("rep_message_sent", conversation_id=conversation_id, message_id=reply.reply_id)
    return jsonify(id=reply.reply_id, conversation_id=conversation_id), 201


@bp.get("/export")
def export() -> Response:
    """The conversation log as ``parley export`` writes it, streamed; ``redact=false`` to opt out,
    ``what=handoffs`` for the handoff steps."""
    from parley.data import export_events
    from parley.data.export import FORMATS, MEDIA_TYPES, SCHEMA, ExportQuery, encode, redactor_of, rows

    services = _services()
    fmt = request.args.get("format", "jsonl")
    if fmt not in FORMATS:
        raise MalformedPayload(f"bad export format {fmt!r}", public=f"format must be one of {', '.join(FORMATS)}")
    redact = request.args.get("redact", "true")
    if redact not in ("true", "false"):
        raise MalformedPayload(f"bad redact {redact!r}", public="redact must be true or false")
    what = request.args.get("what", "messages")
    if what not in ("messages", "handoffs"):
        raise MalformedPayload(f"bad export what {what!r}", public="what must be messages or handoffs")
    query = ExportQuery(since=_moment("since"), until=_moment("until"), channel=request.args.get("channel"))
    redactor = redactor_of(services.settings) if redact == "true" else None
    logger.info("export_started", format=fmt, what=what, redacted=redactor is not None, channel=query.channel)
    produce, schema = (rows, SCHEMA) if what == "messages" else (export_events.handoff_rows, export_events.SCHEMA)
    chunks = encode(produce(services.log.database, query, redactor), fmt, schema=schema)
    return Response(chunks, mimetype=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="parley-{what}.{fmt}"'})


@bp.get("/report")
def report() -> Response:
    """``parley report`` over HTTP: the HTML page, or its figures with ``format=json``."""
    from parley.data.export import ExportQuery, redactor_of
    from parley.data.report import build_report
    from parley.data.report_html import render

    services = _services()
    fmt = request.args.get("format", "html")
    if fmt not in ("html", "json"):
        raise MalformedPayload(f"bad report format {fmt!r}", public="format must be html or json")
    query = ExportQuery(since=_moment("since"), until=_moment("until"), channel=request.args.get("channel"))
    built = build_report(services.log.database, query, redactor_of(services.settings))
    logger.info("report_built", format=fmt, channel=query.channel)
    if fmt == "json":
        return jsonify(built.as_json())
    # The page is self-contained: it may load nothing, run nothing and sit in no frame.
    return Response(render(built), mimetype="text/html", headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"})


@bp.post("/forget")
def forget() -> tuple[Response, int]:
    """GDPR erasure of one customer (``parley forget``), sessions included, in any store mode."""
    from parley.data.forget import forget as erase

    services = _services()
    body = request.get_json(silent=True)
    customer = body.get("customer") if isinstance(body, dict) else None
    if not isinstance(customer, str) or not 1 <= len(customer.strip()) <= 200 or not encodable(customer):
        raise MalformedPayload("forget without a customer", public="body must be {\"customer\": \"<id>\"}")
    state = (services.sessions.forget, services.widget.mailbox.forget)
    erased = erase(services.log.database, services.settings, customer.strip(), state=state, requested_by="admin")
    return jsonify(erased.as_dict()), 200


def _moment(name: str) -> datetime | None:
    value = request.args.get(name)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedPayload(f"bad {name} {value!r}", public=f"{name} must be an ISO date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@bp.post("/knowledge/reload")
def reload_knowledge() -> tuple[Response, int]:
    """Load the knowledge base now, in this process, and say what it holds (every process also
    finds changed articles by itself within ``knowledge.reload_seconds``)."""
    try:
        loaded = _services().knowledge.reload()
    except (ConfigError, OSError) as exc:  # logged by the reload, with what keeps answering
        return jsonify(error="the knowledge base did not load: the last one that did still answers",
                       reason=str(exc)), 422
    return jsonify(articles=len(loaded.index), version=loaded.index.version), 200
