"""Telegram inline keyboards under an answer: quick replies, and thumbs for a grounded answer.

A button's ``callback_data`` may hold 1-64 bytes, so it carries a short code, never the label:
``q:<n>`` for the n-th quick reply, ``f:<score>:<reply id>`` for a thumb. A press arrives as a
``callback_query`` update whose ``message`` is the answer it was under, keyboard included: the
label of a quick reply is read back from there and becomes the customer's next message, through the
inbox like a typed one (deduplicated on the callback's own id). A thumb records feedback on that
answer, in the request, as the widget's and Slack's do. Every press is answered
(``answerCallbackQuery``) so the button stops spinning.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup

from parley.channels.text import ENGLISH_TEXTS
from parley.core.envelope import Reply
from parley.core.texts import Texts

CALLBACK_DATA_BYTES = 64
BUTTON_CHARS = 64  # longer labels are cut off by the apps anyway
MAX_QUICK_REPLIES = 10
QUICK_REPLY, FEEDBACK = "q", "f"
SCORES = {"1": 1, "-1": -1}
THUMBS = (("helpful", "1"), ("not_helpful", "-1"))  # the ``texts:`` key of each label, and its score


@dataclass(frozen=True, slots=True)
class Press:
    """What a button press means: a quick reply's label, or a score for an answer (its reply id)."""

    label: str | None = None
    score: int | None = None
    reply_id: str | None = None


def keyboard(reply: Reply, texts: Texts = ENGLISH_TEXTS) -> InlineKeyboardMarkup | None:
    """One row per quick reply, then the thumbs (grounded bot answers only, labelled in the reply's
    language); None without buttons."""
    rows = [[InlineKeyboardButton(_clip(label), callback_data=f"{QUICK_REPLY}:{index}")]
            for index, label in enumerate(reply.quick_replies[:MAX_QUICK_REPLIES])]
    thumbs = [f"{FEEDBACK}:{score}:{reply.reply_id}" for _, score in THUMBS]
    if reply.meta.sources and reply.author is None and all(_fits(data) for data in thumbs):
        rows.append([InlineKeyboardButton(_clip(texts.get(key, reply.language)), callback_data=data)
                     for (key, _), data in zip(THUMBS, thumbs, strict=True)])
    return InlineKeyboardMarkup(rows) if rows else None


def pressed(query: CallbackQuery) -> Press | None:
    """The press's meaning, or None for a button that is not ours (or an answer too old to read)."""
    kind, _, rest = (query.data or "").partition(":")
    if kind == FEEDBACK:
        score, _, reply_id = rest.partition(":")
        return Press(score=SCORES[score], reply_id=reply_id) if score in SCORES and reply_id else None
    if kind != QUICK_REPLY:
        return None
    # A message older than 48 hours comes back "inaccessible", without its keyboard.
    markup = getattr(query.message, "reply_markup", None)
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            if button.callback_data == query.data and button.text:
                return Press(label=button.text)
    return None


def _fits(data: str) -> bool:
    return 1 <= len(data.encode("utf-8")) <= CALLBACK_DATA_BYTES


def _clip(label: str) -> str:
    return label if len(label) <= BUTTON_CHARS else label[: BUTTON_CHARS - 1] + "…"
