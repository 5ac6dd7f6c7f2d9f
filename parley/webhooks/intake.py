"""The one path every webhook request takes: verify, parse, store durably, acknowledge."""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog
from flask import Response, request

from parley.channels.base import WebhookIntake, storable
from parley.core.envelope import Envelope
from parley.wiring import Services

logger = structlog.get_logger("parley.webhook")


def receive(adapter: WebhookIntake, services: Services) -> Response:
    """Acknowledge only after every envelope is in the inbox; no dialogue work happens here."""
    started = time.perf_counter()
    metrics = services.metrics
    structlog.contextvars.bind_contextvars(channel=adapter.name)
    adapter.verify(request)
    kept = enqueue(adapter.parse(request), services)
    metrics.acknowledged(adapter.name, time.perf_counter() - started)
    return adapter.ack(request, kept)


def enqueue(parsed: Sequence[Envelope], services: Services) -> list[Envelope]:
    """Store each envelope durably (deduplicated, within the senders' limits); those kept.

    Raises ``Unavailable`` when the inbox cannot store, so the caller answers 503, acking nothing.
    """
    inbox, limits, metrics = services.inbox, services.limits, services.metrics
    # Every value a worker needs is checked now: a message it could never store is refused, not acked.
    envelopes = [storable(envelope) for envelope in parsed]
    kept: list[Envelope] = []
    for envelope in envelopes:
        admitted = limits.admit(envelope, inbox)
        if admitted.verdict == "drop":
            # Acknowledged all the same: a refused webhook would only come back as a retry.
            metrics.failed("Throttled")
            logger.warning("envelope_dropped_over_limit", channel=envelope.channel,
                           conversation_id=envelope.conversation_id, message_id=envelope.message_id)
            continue
        if admitted.verdict == "notify":
            logger.warning("sender_over_limit", channel=envelope.channel,
                           conversation_id=envelope.conversation_id, message_id=envelope.message_id)
        kept.append(admitted.envelope)
        metrics.received(envelope.channel, stored=admitted.stored)
        logger.info("envelope_stored" if admitted.stored else "envelope_duplicate", channel=envelope.channel,
                    conversation_id=envelope.conversation_id, message_id=envelope.message_id)
        logger.debug("envelope_text", conversation_id=envelope.conversation_id, text=envelope.text)
    return kept
