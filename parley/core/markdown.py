"""Writing text into the neutral Markdown so that it reads as written, and forms no link.

Replies carry Markdown that each channel renders (``channels/text.py``). Text a customer wrote,
quoted to the support reps, must stay what it says: a link whose label hides its target
(``[Verify your account](https://evil.example/login)``) is spelled out, and every other piece of
punctuation is escaped, so "2*3*4" stays "2*3*4" and ``[x][1]`` or ``<https://…>`` forms no link.
"""

from __future__ import annotations

import re

LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")
# What starts markup inside a line: emphasis, code, links and images, autolinks, entities, tables.
_INLINE = re.compile(r"([\\`*_~\[\]<>&|])")


def escape(text: str) -> str:
    """``text`` as Markdown that renders as ``text`` within a line: no emphasis, code, link,
    autolink or entity in it (CommonMark lets any ASCII punctuation be backslash-escaped)."""
    return _INLINE.sub(r"\\\1", text)


def spelled_links(text: str) -> str:
    """``[label](target)`` as ``label (target)``, repeated until none is left (``[[a](b)](c)``)."""
    while True:
        spelled = LINK.sub(lambda m: m[1] if m[1] == m[2] else f"{m[1]} ({m[2]})", text)
        if spelled == text:
            return text
        text = spelled


def quoted(text: str) -> str:
    """Someone else's text for the reps: its links spelled out, the rest literal."""
    return escape(spelled_links(text))
