"""``/parley`` for reps, answered at once and only to the rep who typed it (ephemeral).

``/parley ask QUESTION`` searches the knowledge base; ``/parley label ARTICLE`` records that the
bot's last answer in the rep's current conversation should have been that article (a label
``parley train`` learns from). The "Wrong answer?" button on a thread's header labels one chosen
answer instead (``desk_bolt``).
"""

from __future__ import annotations

from typing import Any

import structlog

from parley.channels.slack_desk import SlackDesk
from parley.channels.text import to_mrkdwn
from parley.wiring import Services

logger = structlog.get_logger("parley.desk")

USAGE = ("*/parley ask QUESTION*: search the knowledge base (only you see the answer)\n"
         "*/parley label ARTICLE*: the bot's last answer in the conversation you are working on "
         "should have been this article (its id, e.g. `reset-password`); "
         "the *Wrong answer?* button on a thread's header labels one answer you choose")
ANSWER_CHARS = 1500


def command_reply(services: Services, desk: SlackDesk, command: dict[str, Any]) -> str:
    """The ephemeral answer to one slash command (its form fields)."""
    verb, _, rest = str(command.get("text") or "").strip().partition(" ")
    user = str(command.get("user_id") or "")
    logger.info("desk_command", verb=verb[:20], user=user[:32])
    if verb == "ask" and rest.strip():
        return _ask(services, rest.strip())
    if verb == "label" and rest.strip():
        return _label(services, desk, user, rest.strip())
    return USAGE


def _ask(services: Services, question: str) -> str:
    hits = services.index.search(question, k=3)
    if not hits or hits[0].confidence < services.settings.knowledge.min_confidence:
        return f"Nothing in the knowledge base matches “{question}”."
    best = hits[0].article
    body = best.body if len(best.body) <= ANSWER_CHARS else best.body[: ANSWER_CHARS - 1] + "…"
    others = ", ".join(f"`{hit.article.id}`" for hit in hits[1:])
    text = f"*{best.title}* (`{best.id}`)\n{to_mrkdwn(body)}"
    return text + (f"\n\nAlso close: {others}" if others else "")


def _label(services: Services, desk: SlackDesk, user: str, article: str) -> str:
    if services.index.get(article) is None:
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
