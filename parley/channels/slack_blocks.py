"""A reply as Slack Block Kit messages, built with ``slack_sdk.models.blocks``.

The answer goes in mrkdwn sections (3,000 characters each, cut where ``channels/text.py`` cuts),
its sources in a context block as links, its quick replies as buttons, and a grounded answer gets
thumbs up/down. Slack allows 50 blocks a message: a very long answer becomes several messages,
the buttons on the last. Each message's ``text`` (what notifications and screen readers show) is
its mrkdwn, within Slack's 40,000 characters.

Button presses come back on ``/slack/interactions`` (``channels/slack_buttons.py``): a quick
reply as the customer's next message, a thumb as feedback on the answer (its reply id).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject,
                                     PlainTextObject, SectionBlock)

from parley.channels.formats import SLACK
from parley.channels.text import ENGLISH_TEXTS, numbered_sources, render_chunks, source_lines
from parley.core.envelope import Reply
from parley.core.markdown import escape
from parley.core.texts import Texts

SECTION_CHARS = 3000
SECTIONS_PER_MESSAGE = 13  # 13 x 3,000 characters of text stay under Slack's 40,000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTONS = 25
BUTTON_CHARS = 75
VALUE_CHARS = 2000
QUICK_REPLY = "parley_quick_reply"  # action ids: "parley_quick_reply_0", "_1"...
FEEDBACK = {"parley_feedback_up": 1, "parley_feedback_down": -1}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


def to_slack_messages(reply: Reply, texts: Texts = ENGLISH_TEXTS) -> list[SlackMessage]:
    """The reply as one or more ``chat.postMessage`` bodies (text and blocks); its labels and
    buttons in the reply's language (``texts``: the ``texts:`` catalogue)."""
    markdown = f"**{escape(reply.author)}:** {reply.text}" if reply.author else reply.text
    sections = render_chunks(markdown, SLACK, SECTION_CHARS) or ["…"]
    tail = _tail(reply, texts)
    messages = []
    for start in range(0, len(sections), SECTIONS_PER_MESSAGE):
        part = sections[start:start + SECTIONS_PER_MESSAGE]
        blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=section)) for section in part]
        shown = list(part)
        if start + SECTIONS_PER_MESSAGE >= len(sections):
            blocks += tail
            shown += _source_texts(reply, texts)
        messages.append(SlackMessage(text="\n\n".join(shown), blocks=[block.to_dict() for block in blocks]))
    return messages


def _tail(reply: Reply, texts: Texts) -> list[Block]:
    """Under the answer: its sources, its quick replies, and thumbs for a grounded answer."""
    tail: list[Block] = []
    sources = _source_texts(reply, texts)
    if sources:
        tail.append(ContextBlock(block_id="parley_sources",
                                 elements=[MarkdownTextObject(text=line) for line in sources]))
    if reply.quick_replies:
        tail.append(ActionsBlock(block_id="parley_quick_replies", elements=[
            ButtonElement(text=PlainTextObject(text=_clip(label, BUTTON_CHARS), emoji=True),
                          action_id=f"{QUICK_REPLY}_{index}", value=label[:VALUE_CHARS])
            for index, label in enumerate(reply.quick_replies[:MAX_BUTTONS])]))
    if reply.meta.sources and reply.author is None:
        tail.append(ActionsBlock(block_id="parley_feedback", elements=[
            ButtonElement(text=PlainTextObject(text=_clip(texts.get(key, reply.language), BUTTON_CHARS),
                                               emoji=True), action_id=action, value=reply.reply_id)
            for action, key in zip(FEEDBACK, ("helpful", "not_helpful"), strict=True)]))
    return tail


def _source_texts(reply: Reply, texts: Texts) -> list[str]:
    sources = reply.meta.sources[:MAX_CONTEXT_ELEMENTS]
    lines = source_lines(sources, numbered=numbered_sources(reply.text, sources), texts=texts,
                         language=reply.language)
    return [render_chunks(line, SLACK, SECTION_CHARS)[0] for line in lines]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
