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
from parley.core.desk_texts import DeskTexts
from parley.core.markdown import quoted
from parley.wiring import Services

logger = structlog.get_logger("parley.desk")

ANSWER_CHARS = 1500


def command_reply(services: Services, desk: SlackDesk, command: dict[str, Any]) -> str:
    """The ephemeral answer to one slash command (its form fields), as Slack mrkdwn."""
    verb, _, rest = str(command.get("text") or "").strip().partition(" ")
    user = str(command.get("user_id") or "")
    logger.info("desk_command", verb=verb[:20], user=user[:32])
    if verb == "ask" and rest.strip():
        return _ask(services, desk.texts, rest.strip())
    if verb == "label" and rest.strip():
        return to_mrkdwn(_label(services, desk, user, rest.strip()))
    return to_mrkdwn(desk.texts.command_usage)


def _ask(services: Services, texts: DeskTexts, question: str) -> str:
    hits = services.index.search(question, k=3)
    if not hits or hits[0].confidence < services.settings.knowledge.min_confidence:
        return to_mrkdwn(texts.command_no_match.format(question=f"“{quoted(question)}”"))
    best = hits[0].article
    body = best.body if len(best.body) <= ANSWER_CHARS else best.body[: ANSWER_CHARS - 1] + "…"
    others = ", ".join(f"`{hit.article.id}`" for hit in hits[1:])
    text = to_mrkdwn(f"**{quoted(best.title)}** (`{best.id}`)\n{body}")
    return text + ("\n\n" + to_mrkdwn(texts.command_also_close.format(articles=others)) if others else "")


def _label(services: Services, desk: SlackDesk, user: str, article: str) -> str:
    """Neutral Markdown: what labelling ``article`` did."""
    texts = desk.texts
    if services.index.get(article) is None:
        return texts.command_no_article.format(article=article)
    conversation_id = desk.directory.current_conversation(user)
    if conversation_id is None:
        return texts.command_no_conversation
    message_id = desk.directory.label_last_answer(conversation_id, article)
    if message_id is None:
        return texts.command_nothing_to_label
    logger.info("desk_label", conversation_id=conversation_id, article=article)
    return texts.command_labelled.format(article=article)
