"""Quick replies typed as a number: where buttons are not possible (SMS, WhatsApp) the options are
shown numbered ("Reply with a number: 1. Track my order ..."), and the next message "2" means the
second one. The session keeps the options of the bot's last answer (``Session.offered``).

Any channel resolves them, so a widget customer who types "2" under the buttons gets the same.
Only a bare number in range counts; anything else is a message of its own.
"""

from __future__ import annotations

from dataclasses import replace

from parley.core.envelope import Envelope


def chosen(offered: tuple[str, ...], envelope: Envelope) -> Envelope:
    """The message with a number that picks one of ``offered`` replaced by that option."""
    text = envelope.text.strip().rstrip(".)")
    if offered and text.isdecimal() and len(text) <= 2 and 1 <= int(text) <= len(offered):
        return replace(envelope, text=offered[int(text) - 1])
    return envelope
