"""The reps' desk as Block Kit: the thread header, the article modal and the App Home tab. Pure.

The header shows where the handoff stands (``core.desk.ThreadState``) and only the buttons that
still make sense, and each of the bot's answers in the conversation with a "Wrong answer?" button
whose value is that answer's id in the conversation log. The modal's article picker is an
``external_select``: Slack asks ``/slack/interactions`` for options as the rep types
(``block_suggestion``). Limits are Slack's documented ones (tests/stubs/slack_rules.py checks them).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from parley.core.desk_texts import DESK_TEXTS, DeskTexts
from parley.channels.formats import SLACK
from parley.channels.text import render_chunks
from parley.core.desk import DeskAnswer, ThreadState, Waiting
from parley.core.handoff import mask
from parley.core.knowledge import Article
from parley.core.markdown import quoted

Block = dict[str, Any]
CLAIM, HAND_BACK, RESOLVE = "parley_claim", "parley_hand_back", "parley_resolve"
SEND_ARTICLE = "parley_send_article"  # the header's button, the message shortcut and its modal
WRONG_ANSWER = "parley_wrong_answer"  # "parley_wrong_answer_0", "_1"...: unique in a message
LABEL_VIEW = "parley_label"
ARTICLE = "parley_article"  # the external_select's action id, and its input block's id
NO_ARTICLE = "handoff"  # parley.core.classifier.NO_ANSWER: "a person should answer this"
ANSWERS_SHOWN = 5
OPTIONS = 20  # Slack allows 100; a rep reads the first few
HOME_REQUESTS = 40  # three blocks each stay under the home tab's 100
SECTION_CHARS = 3000


def mrkdwn(markdown: str, limit: int = SECTION_CHARS) -> str:
    """Neutral Markdown as one mrkdwn text within ``limit`` (cut, with an ellipsis)."""
    chunks = render_chunks(markdown, SLACK, limit - 1) or ["…"]
    return chunks[0] + ("…" if len(chunks) > 1 else "")


def header_blocks(section: str, conversation_id: str, state: ThreadState, answers: Sequence[DeskAnswer],
                  *, now: float, texts: DeskTexts = DESK_TEXTS) -> list[Block]:
    """The thread's first message: ``section`` (rendered already), the bot's answers, the state
    and the buttons that still apply."""
    blocks: list[Block] = [{"type": "section", "block_id": "parley_header",
                            "text": {"type": "mrkdwn", "text": section}}]
    for index, answer in enumerate(answers[-ANSWERS_SHOWN:]):
        line = texts.bot_answered.format(question=quoted(_clip(answer.question, 150)),
                                         answer=quoted(_clip(" ".join(answer.text.split()), 300)))
        blocks.append({"type": "section", "block_id": f"parley_answer_{index}",
                       "text": {"type": "mrkdwn", "text": mrkdwn(line)},
                       "accessory": _button(f"{WRONG_ANSWER}_{index}", texts.wrong_answer, answer.answer_id)})
    blocks.append({"type": "context", "block_id": "parley_state",
                   "elements": [{"type": "mrkdwn", "text": mrkdwn(state_line(state, now=now, texts=texts))}]})
    buttons = header_buttons(state, conversation_id, texts)
    if buttons:
        blocks.append({"type": "actions", "block_id": "parley_handoff", "elements": buttons})
    return blocks


def state_line(state: ThreadState, *, now: float, texts: DeskTexts = DESK_TEXTS) -> str:
    actor = quoted(state.actor or texts.a_rep)
    if state.state == "claimed":
        line = texts.claimed.format(actor=actor)
    elif state.state == "bot":
        line = texts.handed_back.format(actor=actor)
    elif state.state == "resolved":
        line = texts.resolved.format(actor=actor)
    else:
        since = state.requested_at if state.requested_at is not None else now
        line = texts.waiting.format(wait=wait(now - since, texts))
    return line + (texts.rated.format(rating=state.rating) if state.rating is not None else "")


def header_buttons(state: ThreadState, conversation_id: str, texts: DeskTexts = DESK_TEXTS) -> list[Block]:
    """Claim while waiting; send, hand back and resolve while a person may act; nothing once over."""
    if state.state not in ("waiting", "claimed"):
        return []
    confirm = {"title": {"type": "plain_text", "text": texts.resolve_confirm_title},
               "text": {"type": "mrkdwn", "text": mrkdwn(texts.resolve_confirm_text, 300)},
               "confirm": {"type": "plain_text", "text": texts.resolve},
               "deny": {"type": "plain_text", "text": texts.cancel}}
    buttons = [_button(CLAIM, texts.claim, conversation_id, style="primary")] if state.state == "waiting" else []
    return [*buttons, _button(SEND_ARTICLE, texts.send_article, conversation_id),
            _button(HAND_BACK, texts.hand_back, conversation_id),
            _button(RESOLVE, texts.resolve, conversation_id, confirm=confirm)]


def label_modal(answer: DeskAnswer, metadata: dict[str, str], texts: DeskTexts = DESK_TEXTS) -> Block:
    """The "Wrong answer?" modal: the answer in question, and an article picker."""
    intro = texts.label_intro.format(question=quoted(_clip(answer.question, 200)),
                                     answer=quoted(_clip(" ".join(answer.text.split()), 1200)))
    return _modal(LABEL_VIEW, texts.label_title, texts.label_submit, metadata, intro, texts)


def send_modal(metadata: dict[str, str], texts: DeskTexts = DESK_TEXTS) -> Block:
    return _modal(SEND_ARTICLE, texts.send_title, texts.send_submit, metadata, texts.send_intro, texts)


def note_modal(title: str, text: str, texts: DeskTexts = DESK_TEXTS) -> Block:
    """A modal that only says something (the outcome of a submission, or why nothing happened)."""
    return {"type": "modal", "title": _plain(title, 24), "close": _plain(texts.close, 24),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(text)}}]}


def article_options(articles: Sequence[Article], *, with_none: bool, texts: DeskTexts = DESK_TEXTS) -> list[Block]:
    """The picker's options as the rep types: best matches first (titles, ids as values)."""
    options = [{"text": _plain(f"{article.title} ({article.id})", 75), "value": article.id[:150]}
               for article in articles[:OPTIONS] if len(article.id) <= 150]
    if with_none:
        options.append({"text": _plain(texts.no_article, 75), "value": NO_ARTICLE})
    return options


def home_view(waiting: Waiting, *, now: float, texts: DeskTexts = DESK_TEXTS) -> Block:
    """The App Home tab: open requests, oldest first, each with its wait and a Claim button."""
    requests = waiting.first[:HOME_REQUESTS]
    blocks: list[Block] = [{"type": "header", "text": _plain(texts.home_title, 150)}]
    if not requests:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(texts.home_empty)}})
    for number, request in enumerate(requests):
        line = texts.home_request.format(channel=quoted(request.channel), customer=mask(request.customer),
                                         wait=wait(now - request.requested_at, texts),
                                         reason=quoted(_clip(request.reason, 300)))
        blocks += [{"type": "divider"},
                   {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(line)},
                    # Action ids are unique in a view: "parley_claim_0", "_1"...
                    "accessory": _button(f"{CLAIM}_{number}", texts.claim, request.conversation_id,
                                         style="primary")}]
    if waiting.total > len(requests):
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": mrkdwn(texts.home_more.format(count=waiting.total - len(requests)))}]})
    stamp = _clock(now)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": mrkdwn(texts.home_updated.format(at=stamp))}]})
    return {"type": "home", "blocks": blocks}


def wait(seconds: float, texts: DeskTexts = DESK_TEXTS) -> str:
    """A wait as a rep reads it: "under a minute", "12 min", "3 h 05 min", "2 d 4 h"."""
    minutes = max(0, int(seconds // 60))
    if minutes < 1:
        return texts.under_a_minute
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def metadata_of(view: object) -> dict[str, str]:
    """A view's ``private_metadata`` (ours, JSON); empty when it is not."""
    raw = view.get("private_metadata") if isinstance(view, dict) else None
    try:
        value = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def chosen_article(view: object) -> str | None:
    """The article id picked in a submitted article modal."""
    values = view.get("state", {}).get("values", {}) if isinstance(view, dict) else {}
    picked = values.get(ARTICLE, {}).get(ARTICLE, {}) if isinstance(values, dict) else {}
    option = picked.get("selected_option") if isinstance(picked, dict) else None
    return str(option["value"]) if isinstance(option, dict) and option.get("value") else None


def _modal(callback_id: str, title: str, submit: str, metadata: dict[str, str], intro: str,
           texts: DeskTexts) -> Block:
    picker = {"type": "external_select", "action_id": ARTICLE, "min_query_length": 0,
              "placeholder": _plain(texts.article_placeholder, 150)}
    return {"type": "modal", "callback_id": callback_id, "title": _plain(title, 24),
            "submit": _plain(submit, 24), "close": _plain(texts.cancel, 24),
            "private_metadata": json.dumps(metadata, separators=(",", ":")),
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn(intro)}},
                       {"type": "input", "block_id": ARTICLE, "label": _plain(texts.article_label, 2000),
                        "element": picker}]}


def _button(action_id: str, label: str, value: str, **extra: Any) -> Block:
    return {"type": "button", "action_id": action_id, "text": _plain(label, 75), "value": value[:2000], **extra}


def _plain(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": _clip(text, limit), "emoji": True}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M")
