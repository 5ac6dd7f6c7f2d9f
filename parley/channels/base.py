"""The one interface every channel adapter satisfies, and the text clean-up they share."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Protocol

from flask import Request, Response

from parley.core.envelope import Envelope, Reply
from parley.errors import MalformedPayload, PayloadTooLarge

# C0/C1 control characters other than tab and newline carry nothing a customer meant to say.
_CONTROL = {cp: None for cp in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0))}


class ChannelAdapter(Protocol):
    """Verify a webhook request, parse it into envelopes, acknowledge it, send replies."""

    name: str

    def verify(self, request: Request) -> None:
        """Raise ``InvalidSignature`` (or another ``ChannelError``) unless the request is genuine."""
        ...

    def parse(self, request: Request) -> list[Envelope]:
        """Envelopes to answer; empty for events that need no answer (handshakes, bot echoes)."""
        ...

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        """The platform's response, once every envelope is durably in the inbox."""
        ...

    def send(self, replies: Sequence[Reply]) -> None:
        """Deliver the replies to one message, in order; raise ``UpstreamError`` on failure."""
        ...


def clean_text(text: object, *, max_chars: int, allow_empty: bool = False) -> str:
    """NFC-normalised text without control characters, within the length limit."""
    if not isinstance(text, str):
        raise MalformedPayload("text is not a string", public="message text must be a string")
    cleaned = unicodedata.normalize("NFC", text).translate(_CONTROL).strip()
    if not cleaned and not allow_empty:
        raise MalformedPayload("empty text", public="message text is empty")
    if len(cleaned) > max_chars:
        raise PayloadTooLarge(f"text of {len(cleaned)} characters",
                              public=f"message too long (max {max_chars} characters)")
    return cleaned
