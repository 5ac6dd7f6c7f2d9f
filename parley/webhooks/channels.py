"""``/slack``, ``/twilio``, ``/telegram``: one blueprint per platform, each route one ``receive``.

The routes always exist; a channel without credentials has no adapter, so its requests get 404.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from parley.errors import ChannelDisabled
from parley.webhooks import slack_actions
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


@telegram.post("/webhook")
def telegram_webhook() -> Response:
    return _receive("telegram")
