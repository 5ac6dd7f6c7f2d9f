"""Neutral Markdown to each text channel's format, and splitting at each channel's length limit.

Replies carry a small Markdown subset: ``**bold**``, ``*italic*`` / ``_italic_``, ``` `code` ```,
``[label](url)``, ``# headings`` and ``-``/``*`` bullets. Each renderer escapes what its format
treats as markup first, so customer-visible text never turns into broken markup.

Splitting happens on the Markdown, before rendering, at paragraph, then line, then word
boundaries; each piece is rendered on its own, so a Telegram HTML chunk never ends inside a tag.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence

from parley.core.envelope import Reply, Source
from parley.core.markdown import LINK

Render = Callable[[str], str]

SLACK_LIMIT = 40_000  # chat.postMessage truncates text beyond this
SMS_LIMIT = 1_600  # Twilio rejects longer message bodies
TELEGRAM_LIMIT = 4_096  # sendMessage limit, counted after entity parsing; HTML counts are safe

_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])[*_](?=\S)([^*_\n]+?)(?<=\S)[*_](?![\w*])")
_CODE = re.compile(r"`([^`\n]+)`")
_LINK = LINK
# Slack turns "<target|label>" into a link, but "<!channel|x>" into a broadcast and "<@U1|x>" into a
# mention: only web and mail targets become links; anything else is spelled out.
_SLACK_TARGET = re.compile(r"(?:https?://|mailto:)[^|\s]+")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.MULTILINE)
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_BOLD_ON, _BOLD_OFF, _ITALIC_ON, _ITALIC_OFF = "\x1b[1m", "\x1b[22m", "\x1b[3m", "\x1b[23m"


def with_sources(text: str, sources: Sequence[Source]) -> str:
    """The answer plus a short line naming the articles it came from (text channels show no cards)."""
    if not sources:
        return text
    label = "Source" if len(sources) == 1 else "Sources"
    return f"{text}\n\n{label}: {'; '.join(source.title for source in sources)}"


def as_sent(reply: Reply) -> str:
    """A reply's text as a text channel sends it: a rep's name first (the widget shows it apart),
    then the answer, then its sources."""
    text = f"**{reply.author}:** {reply.text}" if reply.author else reply.text
    return with_sources(text, reply.meta.sources)


def to_mrkdwn(markdown: str) -> str:
    """Slack mrkdwn: ``*bold*``, ``_italic_``, ``<url|label>``; ``&``, ``<``, ``>`` escaped."""
    text = markdown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _LINK.sub(lambda m: f"<{m[2]}|{m[1]}>" if _SLACK_TARGET.fullmatch(m[2]) else f"{m[1]} ({m[2]})",
                     text)
    text = _HEADING.sub(lambda m: f"\x00{m[1]}\x00", text)
    text = _BOLD.sub(lambda m: f"\x00{m[1]}\x00", text)
    text = _ITALIC.sub(lambda m: f"_{m[1]}_", text)
    text = _BULLET.sub(lambda m: f"{m[1]}• ", text)
    # Bold went through a placeholder so the italic pass does not read Slack's "*x*" as italic.
    return text.replace("\x00", "*")


def to_telegram_html(markdown: str) -> str:
    """Telegram's HTML parse mode: only ``b``, ``i``, ``code`` and ``a``; everything else escaped."""
    text = html.escape(markdown, quote=False)
    text = _CODE.sub(lambda m: f"<code>{m[1]}</code>", text)
    text = _LINK.sub(lambda m: f'<a href="{m[2].replace(chr(34), "&quot;")}">{m[1]}</a>', text)
    text = _HEADING.sub(lambda m: f"<b>{m[1]}</b>", text)
    text = _BOLD.sub(lambda m: f"<b>{m[1]}</b>", text)
    text = _ITALIC.sub(lambda m: f"<i>{m[1]}</i>", text)
    return _BULLET.sub(lambda m: f"{m[1]}• ", text)


def to_plain(markdown: str) -> str:
    """Plain text for SMS and WhatsApp: markers dropped, links spelled out."""
    text = _LINK.sub(lambda m: m[1] if m[1] == m[2] else f"{m[1]} ({m[2]})", markdown)
    text = _HEADING.sub(lambda m: m[1], text)
    text = _BOLD.sub(lambda m: m[1], text)
    text = _ITALIC.sub(lambda m: m[1], text)
    text = _CODE.sub(lambda m: m[1], text)
    return _BULLET.sub(lambda m: f"{m[1]}- ", text)


def to_terminal(markdown: str) -> str:
    """ANSI bold and italics for a terminal (``click.echo`` drops them when output is not one),
    links spelled out, bullets as "•". Control characters go first: text never drives the terminal."""
    text = "".join(char for char in markdown if char in "\n\t" or unicodedata.category(char) != "Cc")
    text = _LINK.sub(lambda m: m[1] if m[1] == m[2] else f"{m[1]} ({m[2]})", text)
    text = _HEADING.sub(lambda m: f"{_BOLD_ON}{m[1]}{_BOLD_OFF}", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_ON}{m[1]}{_BOLD_OFF}", text)
    text = _ITALIC.sub(lambda m: f"{_ITALIC_ON}{m[1]}{_ITALIC_OFF}", text)
    text = _CODE.sub(lambda m: m[1], text)
    return _BULLET.sub(lambda m: f"{m[1]}• ", text)


def render_chunks(markdown: str, render: Render, limit: int) -> list[str]:
    """The rendered text in as few chunks as fit ``limit``, split at the most natural boundary."""
    return [render(piece) for piece in _pieces(markdown.strip(), render, limit) if piece.strip()]


def _pieces(markdown: str, render: Render, limit: int) -> list[str]:
    """Markdown pieces that each render within ``limit``: paragraphs, else lines, else words."""
    if len(render(markdown)) <= limit:
        return [markdown]
    for separator in ("\n\n", "\n", " "):
        parts = markdown.split(separator)
        if len(parts) > 1:
            return _pack(parts, separator, render, limit)
    return _hard_cut(markdown, render, limit)


def _pack(parts: list[str], separator: str, render: Render, limit: int) -> list[str]:
    packed: list[str] = []
    for part in parts:
        if packed and len(render(packed[-1] + separator + part)) <= limit:
            packed[-1] += separator + part
        elif len(render(part)) <= limit:
            packed.append(part)
        else:
            packed.extend(_pieces(part, render, limit))
    return packed


def _hard_cut(word: str, render: Render, limit: int) -> list[str]:
    # One "word" longer than the limit (a huge URL): cut it, shrinking the cut while escaping
    # makes the rendered piece longer than the raw one.
    size = limit
    while size > 1 and len(render(word[:size])) > limit:
        size = size * 3 // 4
    return [word[i:i + size] for i in range(0, len(word), size)]
