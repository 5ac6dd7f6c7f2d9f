"""How each channel writes the parsed reply (``channels/markup.py``): one small class per format.

Each renders a span, a line and a block, and measures text the way its platform counts it, so
``channels/text.py`` can split at the platform's limit:

- Telegram HTML: only tags the Bot API accepts (``b``, ``i``, ``s``, ``code``, ``pre``,
  ``blockquote``, ``a``), always closed in order, never inside ``code``/``pre``; ``&``, ``<``,
  ``>`` and ``"`` as entities. Its 4,096-character limit counts the text after entity parsing,
  in UTF-16 code units (as its entity offsets do).
- Slack mrkdwn: ``*b*``, ``_i_``, ``~s~``, ``` `code` ```, fenced blocks, ``>`` quotes,
  ``<url|label>`` for web and mail links only (``<!channel>`` or ``<@U1>`` would ping people).
- Plain text (SMS, WhatsApp): no markup, links spelled out, ASCII bullets (a "•" would switch an
  SMS to UCS-2 and cut its segments from 160 to 70 characters).
- The terminal (``parley chat``): ANSI bold, italics and strikethrough.
"""

from __future__ import annotations

import html
import re

from parley.channels.markup import Block, Line, Span

_WEB = re.compile(r"https?://[^\s/?#]+\S*", re.IGNORECASE)
_MAIL = re.compile(r"mailto:[^\s@]+@\S+", re.IGNORECASE)
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,32}")
_TAG = re.compile(r"<[^>]*>")
_WRAP_ORDER = ("s", "i", "b")  # innermost first


def web_link(href: str) -> bool:
    return _WEB.fullmatch(href) is not None


def web_or_mail_link(href: str) -> bool:
    return web_link(href) or _MAIL.fullmatch(href) is not None


def spelled(span: Span) -> str:
    """`` (target)`` after a label that does not already say it; empty when it does."""
    href = span.href or ""
    if href in (span.text, f"mailto:{span.text}"):
        return ""
    return f" ({href.removeprefix('mailto:')})"


class Format:
    """Plain text: the markup dropped, links spelled out. The other formats override pieces."""

    name = "plain"
    limit = 1_600  # Twilio refuses a longer message body (SMS and WhatsApp)
    bullet = "-"
    rule = "---"
    quote_prefix = "> "

    def span(self, span: Span) -> str:
        text = span.text.replace("•", self.bullet).replace("———", self.rule)
        return text + spelled(span) if span.href else text

    def line(self, kind: str, line: Line) -> str:
        if kind == "code":
            return self.code_text("".join(span.text for span in line))
        return "".join(self.span(span) for span in line)

    def code_text(self, text: str) -> str:
        return text

    def block(self, block: Block) -> str:
        lines = [self.line(block.kind, line) for line in block.lines]
        if block.kind == "quote":
            return "\n".join(f"{self.quote_prefix}{line}" for line in lines)
        return "\n".join(lines)

    def visible(self, text: str) -> str:
        return text

    def measure(self, text: str) -> int:
        return len(text)


class TelegramHTML(Format):
    name = "telegram"
    limit = 4_096
    bullet = "•"
    rule = "———"

    def span(self, span: Span) -> str:
        text = html.escape(span.text.replace("———", self.rule), quote=False)
        # Web links only: Telegram refuses a text link to anything else (mail addresses it finds itself).
        if span.href and not web_link(span.href):
            text += html.escape(spelled(span), quote=False)
        if "code" in span.styles and not span.href:
            return f"<code>{text}</code>"  # code holds no other entity
        for style in _WRAP_ORDER:
            if style in span.styles:
                text = f"<{style}>{text}</{style}>"
        if span.href and web_link(span.href):
            return f'<a href="{html.escape(span.href, quote=True)}">{text}</a>'
        return text

    def code_text(self, text: str) -> str:
        return html.escape(text, quote=False)

    def block(self, block: Block) -> str:
        body = "\n".join(self.line(block.kind, line) for line in block.lines)
        if block.kind == "code":
            if _LANGUAGE.fullmatch(block.language):
                return f'<pre><code class="language-{block.language}">{body}</code></pre>'
            return f"<pre>{body}</pre>"
        if block.kind == "quote":
            return f"<blockquote>{body}</blockquote>"
        return body

    def visible(self, text: str) -> str:
        return html.unescape(_TAG.sub("", text))

    def measure(self, text: str) -> int:
        return len(self.visible(text).encode("utf-16-le")) // 2


class SlackMrkdwn(Format):
    name = "slack"
    limit = 40_000  # chat.postMessage truncates text beyond this
    bullet = "•"
    rule = "———"

    def span(self, span: Span) -> str:
        text = _slack_escape(span.text)
        core = text.strip()
        if core:  # markers must hug the text: "*bold *" is not bold in Slack
            lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()):]
            if "code" in span.styles:
                core = f"`{core}`"
            else:
                for style, marker in zip(_WRAP_ORDER, ("~", "_", "*")):
                    if style in span.styles:
                        core = f"{marker}{core}{marker}"
            text = lead + core + trail
        if not span.href:
            return text
        if web_or_mail_link(span.href):
            return f"<{_slack_url(span.href)}|{text or _slack_escape(span.href)}>"
        return text + _slack_escape(spelled(span))

    def code_text(self, text: str) -> str:
        return _slack_escape(text)

    def block(self, block: Block) -> str:
        if block.kind == "code":
            return "```\n" + "\n".join(self.line("code", line) for line in block.lines) + "\n```"
        return super().block(block)


class Terminal(Format):
    name = "terminal"
    limit = 1_000_000
    bullet = "•"
    rule = "———"
    quote_prefix = "│ "
    _ANSI = {"b": ("\x1b[1m", "\x1b[22m"), "i": ("\x1b[3m", "\x1b[23m"), "s": ("\x1b[9m", "\x1b[29m")}

    def span(self, span: Span) -> str:
        text = span.text
        for style in _WRAP_ORDER:
            if style in span.styles and style in self._ANSI:
                on, off = self._ANSI[style]
                text = f"{on}{text}{off}"
        return text + spelled(span) if span.href else text


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_url(href: str) -> str:
    # "|" ends the target and ">" the link: percent-encoded, they still lead to the same page.
    return href.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace("&", "&amp;")


PLAIN, TELEGRAM, SLACK, TERMINAL = Format(), TelegramHTML(), SlackMrkdwn(), Terminal()
