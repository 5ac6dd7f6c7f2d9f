"""Channels whose messages come in by a call, not a webhook: the terminal, ``parley eval``, tests.

Their messages skip the inbox, not the pipeline: ``process_now`` hands one envelope straight to
``Pipeline.process``, the worker's own entry point, which logs it, decides, keeps the state and
sends the replies through the outbox like any channel's. One caller and one message at a time, so
there is no order to keep and no worker to wait for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from parley.channels.base import BaseAdapter, Once, always
from parley.core.envelope import Envelope, Reply
from parley.core.inbox import Claim, Delivery

# ``Pipeline.process``, the one path every message takes after the inbox.
Process = Callable[[Delivery], None]


def process_now(process: Process, envelope: Envelope) -> None:
    """Run one envelope through the pipeline in this thread, as a worker would have."""
    process(Delivery(envelope=envelope, claim=Claim(conversation_id=envelope.conversation_id, token="direct"),
                     entry_id=envelope.message_id))


class CollectingChannel(BaseAdapter):
    """Keeps the replies sent to it (Rasa's ``CollectingOutputChannel``) for the caller to read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sent: list[Reply] = []

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        self._sent.extend(replies)

    def ask(self, process: Process, envelope: Envelope) -> list[Reply]:
        """The replies this channel was sent while the pipeline processed ``envelope``."""
        self._sent.clear()
        process_now(process, envelope)
        replies, self._sent = self._sent, []
        return replies
