"""The one path every webhook request takes: verify, parse, store durably, acknowledge."""

from __future__ import annotations

import structlog
from flask import Response, request

from parley.channels.base import ChannelAdapter
from parley.core.inbox import Inbox

logger = structlog.get_logger("parley.webhook")


def receive(adapter: ChannelAdapter, inbox: Inbox) -> Response:
    """Acknowledge only after every envelope is in the inbox; no dialogue work happens here."""
    adapter.verify(request)
    envelopes = adapter.parse(request)
    for envelope in envelopes:
        stored = inbox.put(envelope)
        logger.info("envelope_stored" if stored else "envelope_duplicate", channel=envelope.channel,
                    conversation_id=envelope.conversation_id, message_id=envelope.message_id)
        logger.debug("envelope_text", conversation_id=envelope.conversation_id, text=envelope.text)
    return adapter.ack(request, envelopes)
