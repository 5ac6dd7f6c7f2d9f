"""The one path every webhook request takes: verify, parse, store durably, acknowledge."""

from __future__ import annotations

import time

import structlog
from flask import Response, current_app, request

from parley.channels.base import ChannelAdapter
from parley.core.inbox import Inbox

logger = structlog.get_logger("parley.webhook")


def receive(adapter: ChannelAdapter, inbox: Inbox) -> Response:
    """Acknowledge only after every envelope is in the inbox; no dialogue work happens here."""
    started = time.perf_counter()
    metrics = current_app.extensions["parley"].metrics
    structlog.contextvars.bind_contextvars(channel=adapter.name)
    adapter.verify(request)
    envelopes = adapter.parse(request)
    for envelope in envelopes:
        stored = inbox.put(envelope)
        metrics.received(envelope.channel, stored=stored)
        logger.info("envelope_stored" if stored else "envelope_duplicate", channel=envelope.channel,
                    conversation_id=envelope.conversation_id, message_id=envelope.message_id)
        logger.debug("envelope_text", conversation_id=envelope.conversation_id, text=envelope.text)
    metrics.acknowledged(adapter.name, time.perf_counter() - started)
    return adapter.ack(request, envelopes)
