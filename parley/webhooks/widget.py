"""``/widget``: the demo page, the embeddable script and the browser's JSON API."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from flask import Blueprint, Response, current_app, jsonify, render_template, send_from_directory

from parley.channels.web import WidgetAdapter
from parley.errors import NotFound
from parley.webhooks.intake import receive
from parley.wiring import Services

STATIC = Path(__file__).parent / "static" / "widget"

bp = Blueprint("widget", __name__, url_prefix="/widget", template_folder="templates")


def _services() -> Services:
    return current_app.extensions["parley"]


def _adapter() -> WidgetAdapter:
    return cast(WidgetAdapter, _services().adapters["widget"])


@bp.get("")
def demo() -> str:
    bot = _services().settings.bot
    return render_template("widget/demo.html", title=bot.title, bot=bot.name)


@bp.get("/widget.js")
def script() -> Response:
    response = send_from_directory(STATIC, "widget.js", mimetype="text/javascript", max_age=300)
    return response


@bp.get("/api/config")
def config() -> Response:
    settings = _services().settings
    bot = settings.bot
    return jsonify(title=bot.title, greeting=bot.greeting, quick_replies=list(bot.quick_replies),
                   theme={"primary": bot.theme.primary}, max_length=settings.limits.max_text_chars)


@bp.post("/api/messages")
def messages() -> Response:
    return receive(_adapter(), _services().inbox)


@bp.get("/api/conversations/<conversation_id>")
def conversation(conversation_id: str) -> Response:
    transcript = _services().log.transcript(conversation_id, "widget")
    if transcript is None:
        raise NotFound(f"conversation {conversation_id}", public="unknown conversation")
    return jsonify(conversation_id=conversation_id, messages=[
        {"id": m.id, "direction": m.direction, "text": m.text, "author": m.author,
         "sources": [{"id": s.id, "title": s.title} for s in m.sources],
         "quick_replies": list(m.quick_replies), "created_at": m.created_at}
        for m in transcript
    ])
