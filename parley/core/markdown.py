"""The neutral Markdown's link syntax, and quoting someone's text so that it forms no link.

Replies carry a small Markdown subset that each channel renders (``channels/text.py``). Text a
customer wrote, quoted to the support reps, must stay what it says: a link whose label hides its
target (``[Verify your account](https://evil.example/login)``) is spelled out instead.
"""

from __future__ import annotations

import re

LINK = re.compile(r"\[([^\]\n]+)\]\((\S+?)\)")


def spelled_links(text: str) -> str:
    """``[label](target)`` as ``label (target)``, repeated until none is left (``[[a](b)](c)``)."""
    while True:
        spelled = LINK.sub(lambda m: m[1] if m[1] == m[2] else f"{m[1]} ({m[2]})", text)
        if spelled == text:
            return text
        text = spelled
