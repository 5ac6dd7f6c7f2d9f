"""What Slack accepts in a ``chat.postMessage`` text, and what Parley promises never to post there.

From https://api.slack.com/methods/chat.postMessage and
https://api.slack.com/reference/surfaces/formatting#escaping:

1. ``text`` is at most 40,000 characters (``msg_too_long``) and not empty without blocks
   (``no_text``).
2. ``&``, ``<`` and ``>`` are written ``&amp;``, ``&lt;``, ``&gt;`` unless they are a control
   sequence ``<...>`` or a ``> `` opening a quoted line; ``&`` starts only those three entities.
3. House rule (Slack would accept it, and ping or mislead people): the only control sequences are
   web and mail links, ``<http(s)://...|label>`` or ``<mailto:...|label>``; never ``<!channel>``,
   ``<!here>``, ``<@U…>`` or ``<#C…>``.
A violation of 2 or 3 is refused as ``invalid_arguments`` so a test sees it.
"""

from __future__ import annotations

import re

MAX_TEXT = 40_000
_LINK = re.compile(r"<(?:https?://[^\s|<>]+|mailto:[^\s|<>]+@[^\s|<>]+)(?:\|[^<>]*)?>")
_ENTITY = re.compile(r"&(?:amp|lt|gt);")


class Refused(ValueError):
    """Slack's ``error`` code."""


def check_text(text: str | None, *, has_blocks: bool = False) -> None:
    if not text:
        if has_blocks:
            return
        raise Refused("no_text")
    if len(text) > MAX_TEXT:
        raise Refused("msg_too_long")
    at = 0
    while at < len(text):
        char = text[at]
        if char == "<":
            match = _LINK.match(text, at)
            if match is None:
                raise Refused("invalid_arguments")  # a mention, a broadcast or a stray "<"
            at = match.end()
            continue
        if char == ">" and (at == 0 or text[at - 1] == "\n") and text[at + 1:at + 2] in (" ", "\n", ""):
            at += 1  # "> " opening a line is a quote
            continue
        if char == ">" or (char == "&" and _ENTITY.match(text, at) is None):
            raise Refused("invalid_arguments")
        at += 1
