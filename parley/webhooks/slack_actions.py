"""``/slack/interactions`` and ``/slack/commands``, and the desk's events on ``/slack/events``.

A customer's button under an answer (``channels/slack_buttons``) keeps the customers' path. Every
other interaction, the slash command and ``app_home_opened`` go to the desk's Bolt app
(``desk_bolt``) through Bolt's Flask adapter, which verifies the signature. Bolt cannot parse a
body that is not JSON where JSON is due: that one is checked here, signature first, and refused
with a 400.
"""

from __future__ import annotations

import json
import time

import structlog
from flask import Blueprint, Flask, Request, Response, current_app, request
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_bolt.adapter.flask.handler import to_bolt_request, to_flask_response
from slack_bolt.request import BoltRequest
from slack_bolt.request.internals import parse_body

from parley.channels.slack import SlackAdapter
from parley.channels.slack_buttons import is_customer_action
from parley.channels.slack_common import verify_signature
from parley.errors import ChannelDisabled, MalformedPayload
from parley.webhooks.desk_bolt import desk_app
from parley.webhooks.intake import receive
from parley.wiring import Services

logger = structlog.get_logger("parley.desk")

bp = Blueprint("slack_desk", __name__, url_prefix="/slack")
HANDLER = "parley.desk_bolt"  # the Flask app's extension holding the desk's SlackRequestHandler


def init_app(app: Flask, services: Services) -> None:
    """The routes, and the desk's Bolt app when a handoff channel is configured."""
    desk, slack = services.desk, services.settings.channels.slack
    if desk is not None and slack.bot_token is not None and slack.signing_secret is not None:
        bolt = desk_app(services, desk, bot_token=slack.bot_token.get_secret_value(),
                        signing_secret=slack.signing_secret.get_secret_value())
        app.extensions[HANDLER] = SlackRequestHandler(bolt)
    app.register_blueprint(bp)


def is_desk_event(req: Request) -> bool:
    """An Events API event for the desk (the App Home tab opened), not a customer's message."""
    if HANDLER not in current_app.extensions:
        return False
    try:
        body = json.loads(req.get_data(as_text=True))
    except (ValueError, RecursionError):
        return False
    event = body.get("event") if isinstance(body, dict) else None
    return isinstance(event, dict) and event.get("type") == "app_home_opened"


@bp.post("/interactions")
def interactions() -> Response:
    """A customer's button under an answer, or anything a rep does in the desk."""
    services: Services = current_app.extensions["parley"]
    slack = services.adapters.get("slack")
    if isinstance(slack, SlackAdapter) and is_customer_action(request):
        return receive(slack.buttons, services)
    return handle()


@bp.post("/commands")
def commands() -> Response:
    return handle()


def handle() -> Response:
    """The request through Bolt's Flask adapter; its refusals logged as ours are."""
    handler: SlackRequestHandler | None = current_app.extensions.get(HANDLER)
    if handler is None:
        raise ChannelDisabled("the Slack handoff desk is not configured (SLACK_HANDOFF_CHANNEL)")
    structlog.contextvars.bind_contextvars(channel="desk")
    # What SlackRequestHandler.handle does, with the request built first: Bolt reads the body's
    # fields as it builds it, and a body that is not what Slack sends would crash it (a 500).
    bolt_request = _bolt_request(request)
    try:
        response = to_flask_response(handler.app.dispatch(bolt_request))
    except (TypeError, KeyError, AttributeError, IndexError, ValueError) as exc:
        # Bolt's matchers read the payload as Slack documents it (block_actions with an action...)
        # and crash otherwise, before any listener ran: refused as malformed, nothing stored.
        raise MalformedPayload(f"a desk payload Bolt could not route: {type(exc).__name__}") from exc
    if response.status_code == 401:
        logger.warning("request_refused", status=401, error="InvalidSignature",
                       detail="Slack signature does not match the signing secret, or is stale")
        current_app.extensions["parley"].metrics.failed("InvalidSignature")
    elif response.status_code == 404:  # nothing of ours listens: acknowledged and dropped
        logger.info("desk_interaction_ignored", kind=_kind(request))
        return Response(status=200)
    return response


def _bolt_request(req: Request) -> BoltRequest:
    """Bolt's request, or (signature checked first: 401 before 400) ``MalformedPayload``."""
    try:
        body = parse_body(req.get_data(as_text=True), req.mimetype)
        bolt_request = to_bolt_request(req) if isinstance(body, dict) else None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        bolt_request = None
    if bolt_request is None:
        desk = current_app.extensions["parley"].desk
        verify_signature(desk.verifier, req, clock=time.time)
        raise MalformedPayload("a desk request whose body is not what Slack sends")
    return bolt_request


def _kind(req: Request) -> str:
    try:
        body = parse_body(req.get_data(as_text=True), req.mimetype)
    except (ValueError, RecursionError):
        return "?"
    return str(body.get("type") or body.get("command") or "?")[:40] if isinstance(body, dict) else "?"
