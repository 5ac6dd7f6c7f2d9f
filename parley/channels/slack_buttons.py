"""A customer pressing a button under a Slack answer (``/slack/interactions``, ``block_actions``).

A quick reply becomes the customer's next message, with the button's label as its text, through
the inbox like a typed one: same conversation id as the message the answer went to (the DM, or
the mention's thread), deduplicated on the action's own timestamp. A thumb up or down records
feedback on that answer (its reply id), in the request as the widget's thumbs do: one row, no
dialogue work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import structlog
from flask import Request, Response
from slack_sdk.signature import SignatureVerifier

from parley.channels.base import RecordFeedback, clean_text
from parley.channels.slack_blocks import FEEDBACK, QUICK_REPLY
from parley.channels.slack_common import as_dict, interaction_payload, verify_signature
from parley.core.envelope import Envelope
from parley.errors import MalformedPayload, UnsupportedMediaType

logger = structlog.get_logger("parley.slack")


def is_customer_action(request: Request) -> bool:
    """Whether an interaction is a customer's button (else it is the reps' desk's): routing only,
    before any check; the adapter that takes it verifies the signature."""
    try:
        payload = json.loads(request.form.get("payload", ""))
        action_id = str(payload["actions"][0]["action_id"])
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return False
    return action_id.startswith(QUICK_REPLY) or action_id in FEEDBACK


class SlackButtons:
    """The customers' presses on an answer's buttons: a ``WebhookIntake``; what they lead to is
    answered through the Slack adapter (the envelopes' channel)."""

    name = "slack"

    def __init__(self, *, verifier: SignatureVerifier, feedback: RecordFeedback, max_text_chars: int) -> None:
        self.verifier = verifier
        self.feedback = feedback
        self.max_text_chars = max_text_chars

    def verify(self, request: Request) -> None:
        verify_signature(self.verifier, request, clock=time.time)
        if request.mimetype != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType(f"content type {request.mimetype!r}")

    def parse(self, request: Request) -> list[Envelope]:
        payload = _payload(request)
        action, user = payload["actions"][0], payload["user"]
        container = as_dict(payload.get("container"))
        team = str(as_dict(payload.get("team")).get("id") or user.get("team_id") or "")
        channel = str(container.get("channel_id") or as_dict(payload.get("channel")).get("id") or "")
        if not channel or not isinstance(user.get("id"), str):
            raise MalformedPayload("block_actions without a channel or a user")
        thread = container.get("thread_ts") if isinstance(container.get("thread_ts"), str) else None
        conversation_id = f"slack:{team}:{channel}" + (f":{thread}" if thread else "")
        action_id, value = str(action.get("action_id")), str(action.get("value") or "")
        if action_id in FEEDBACK:
            self._record(conversation_id, value, FEEDBACK[action_id])
            return []
        route = {"channel": channel, **({"thread_ts": str(thread)} if thread else {})}
        stamp = str(action.get("action_ts") or payload.get("trigger_id") or "")
        return [Envelope(channel=self.name, conversation_id=conversation_id,
                         message_id=f"action:{stamp}:{user['id']}", sender=user["id"],
                         text=clean_text(value, max_chars=self.max_text_chars, clip=True), route=route,
                         raw={"team_id": team, "event_type": "block_actions", "action_id": action_id[:64]})]

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        return Response(status=200)

    def _record(self, conversation_id: str, reply_id: str, score: int) -> None:
        stored = bool(reply_id) and self.feedback(conversation_id=conversation_id, channel=self.name,
                                                  message_id=reply_id[:200], score=score)
        logger.info("feedback_stored" if stored else "feedback_unknown_answer",
                    conversation_id=conversation_id, message_id=reply_id[:64], score=score)


def _payload(request: Request) -> dict[str, Any]:
    payload = interaction_payload(request)
    if (payload.get("type") != "block_actions"
            or not isinstance(payload.get("actions"), list) or not payload["actions"]
            or not isinstance(payload["actions"][0], dict) or not isinstance(payload.get("user"), dict)):
        raise MalformedPayload("not a block_actions payload with an action and a user")
    return payload
