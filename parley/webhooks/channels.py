"""``/slack``, ``/twilio``, ``/telegram``: one blueprint per platform, each route one ``receive``.

The routes always exist; a channel without credentials has no adapter, so its requests get 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from parley.errors import ChannelDisabled, NotFound
from parley.webhooks import slack_actions
from parley.webhooks.files import file_response
from parley.webhooks.intake import receive
from parley.wiring import Services

slack = Blueprint("slack", __name__, url_prefix="/slack")
twilio = Blueprint("twilio", __name__, url_prefix="/twilio")
telegram = Blueprint("telegram", __name__, url_prefix="/telegram")
blueprints = (slack, twilio, telegram)


def _receive(channel: str) -> Response:
    services: Services = current_app.extensions["parley"]
    adapter = services.adapters.get(channel)
    if adapter is None:
        raise ChannelDisabled(f"{channel} is not configured (set its secrets in the environment)")
    return receive(adapter, services)


@slack.post("/events")
def slack_events() -> Response:
    # The App Home tab opened is the reps' desk's (its Bolt app); every other event keeps this path.
    if slack_actions.is_desk_event(request):
        return slack_actions.handle()
    return _receive("slack")


@twilio.post("/messages")
def twilio_messages() -> Response:
    return _receive("twilio")


@twilio.get("/media/<token>")
def twilio_media(token: str) -> Response:
    """A rep's file, fetched by Twilio to send as MMS or WhatsApp media (``TwilioAdapter.send_file``)."""
    adapter = current_app.extensions["parley"].adapters.get("twilio")
    kept = adapter.kept_media(token[:100]) if adapter is not None else None
    if kept is None:
        raise NotFound("no such media (it expired, or never was)")
    return file_response(kept)


@telegram.post("/webhook")
def telegram_webhook() -> Response:
    return _receive("telegram")
