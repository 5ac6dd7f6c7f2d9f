"""``/slack/interactions`` (the thread's buttons, and the customers' under answers, which
``channels/slack_buttons`` takes) and ``/slack/commands`` (``/parley``), for reps.

Buttons become agent envelopes through the inbox, like thread replies, so a conversation's rep
and customer messages are handled in order by one worker. The slash command answers at once and
only to the rep who typed it (ephemeral): ``/parley ask QUESTION`` searches the knowledge base,
``/parley label ARTICLE`` records that the bot's last answer in the rep's current conversation
should have been that article (a label ``parley train`` learns from).
"""

from __future__ import annotations


import structlog
from flask import Blueprint, Response, current_app, jsonify, request

from parley.channels.slack import SlackAdapter
from parley.channels.slack_buttons import is_customer_action
from parley.channels.slack_desk import SlackDesk
from parley.channels.text import to_mrkdwn
from parley.errors import ChannelDisabled
from parley.webhooks.intake import receive
from parley.wiring import Services

logger = structlog.get_logger("parley.desk")

bp = Blueprint("slack_desk", __name__, url_prefix="/slack")

USAGE = ("*/parley ask QUESTION*: search the knowledge base (only you see the answer)\n"
         "*/parley label ARTICLE*: the bot's last answer in the conversation you are working on "
         "should have been this article (its id, e.g. `reset-password`)")
ANSWER_CHARS = 1500


def _services() -> Services:
    return current_app.extensions["parley"]


def _desk() -> SlackDesk:
    desk = _services().desk
    if desk is None:
        raise ChannelDisabled("the Slack handoff desk is not configured (SLACK_HANDOFF_CHANNEL)")
    return desk


@bp.post("/interactions")
def interactions() -> Response:
    """A customer's button under an answer, or a rep's in the handoff channel."""
    services = _services()
    slack = services.adapters.get("slack")
    if isinstance(slack, SlackAdapter) and is_customer_action(request):
        return receive(slack.buttons, services)
    return receive(_desk(), services)


@bp.post("/commands")
def commands() -> Response:
    desk = _desk()
    desk.verify(request)  # signed by Slack, as a form: the same check as the buttons'
    verb, _, rest = request.form.get("text", "").strip().partition(" ")
    user = request.form.get("user_id", "")
    logger.info("desk_command", verb=verb[:20], user=user[:32])
    if verb == "ask" and rest.strip():
        return _ephemeral(_ask(rest.strip()))
    if verb == "label" and rest.strip():
        return _ephemeral(_label(desk, user, rest.strip()))
    return _ephemeral(USAGE)


def _ask(question: str) -> str:
    index = _services().index
    hits = index.search(question, k=3)
    if not hits or hits[0].confidence < _services().settings.knowledge.min_confidence:
        return f"Nothing in the knowledge base matches “{question}”."
    best = hits[0].article
    body = best.body if len(best.body) <= ANSWER_CHARS else best.body[: ANSWER_CHARS - 1] + "…"
    others = ", ".join(f"`{hit.article.id}`" for hit in hits[1:])
    text = f"*{best.title}* (`{best.id}`)\n{to_mrkdwn(body)}"
    return text + (f"\n\nAlso close: {others}" if others else "")


def _label(desk: SlackDesk, user: str, article: str) -> str:
    if _services().index.get(article) is None:
        return f"There is no article `{article}`. Try `/parley ask` to find its id."
    conversation_id = desk.directory.current_conversation(user)
    if conversation_id is None:
        return ("Claim or reply in a conversation's thread first: "
                "the label goes to the conversation you work on.")
    message_id = desk.directory.label_last_answer(conversation_id, article)
    if message_id is None:
        return "The bot has not answered anything in that conversation yet, so there is nothing to label."
    logger.info("desk_label", conversation_id=conversation_id, article=article)
    return f"Labelled: the bot's last answer should have been `{article}`. `parley train` will learn from it."


def _ephemeral(text: str) -> Response:
    return jsonify(response_type="ephemeral", text=text)
