"""The terminal as a channel (errbot's text backend): ``parley chat`` talks to the bot in a shell.

A typed line becomes an envelope that takes the path a webhook's message takes after the inbox
(``direct.process_now``: logged, decided, kept, sent through the outbox), and each reply is written
back rendered for a terminal. Nothing here knows the dialogue: a handoff, a rating prompt or a rep's
message reads like any other reply.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence

from parley.channels.base import BaseAdapter, Once, always, clean_text
from parley.channels.direct import Process, process_now
from parley.channels.text import to_terminal
from parley.core.envelope import Envelope, Reply

INDENT = " " * 5  # under the "bot> " prompt


class TerminalChannel(BaseAdapter):
    name = "terminal"

    def __init__(self, *, write: Callable[[str], None], sender: str, max_text_chars: int) -> None:
        self.write = write
        self.sender = sender
        self.max_text_chars = max_text_chars
        # One conversation per session, as a browser opening the widget starts one.
        self.conversation_id = f"terminal-{uuid.uuid4().hex[:12]}"
        self._numbers = itertools.count(1)

    def say(self, process: Process, text: str) -> None:
        """The customer typed ``text``: process it; the replies arrive through ``send``."""
        process_now(process, self.to_envelope(text))

    def to_envelope(self, text: str) -> Envelope:
        return Envelope(channel=self.name, conversation_id=self.conversation_id,
                        message_id=f"{self.conversation_id}-{next(self._numbers)}", sender=self.sender,
                        text=clean_text(text, max_chars=self.max_text_chars))

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        for reply in replies:
            self.write(to_screen(reply))


def to_screen(reply: Reply) -> str:
    """``bot> answer`` (or the rep's name), then its sources and the quick replies on offer."""
    speaker = reply.author or "bot"
    lines = to_terminal(reply.text).splitlines() or [""]
    shown = [f"{speaker}> {lines[0]}", *(f"{INDENT}{line}" for line in lines[1:])]
    shown += [f"{INDENT}(source: {source.title} [{source.id}]{f' {source.url}' if source.url else ''})"
              for source in reply.meta.sources]
    if reply.quick_replies:
        shown.append(f"{INDENT}(reply with: {' | '.join(reply.quick_replies)})")
    return "\n".join(shown)
