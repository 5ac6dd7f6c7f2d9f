"""The reps' desk in Slack: one thread per handed-off conversation in the handoff channel.

Out (``send``): the dialogue's replies addressed to the desk: the thread's header (channel, masked
customer, reason, last messages, buttons Claim / Hand back to bot / Resolve), then each customer
message and each step, in that thread. In: a rep's thread reply (from ``/slack/events``, through
``event_envelopes``) and a button click (``/slack/interactions``, through ``parse``) become agent
envelopes for the *customer's* conversation, found from the thread through the directory.
Bot echoes, edits, deletes, top-level chatter and threads Parley does not know parse to nothing.
"""

from __future__ import annotations

import html
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from flask import Request, Response
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier

from parley.channels.base import clean_text
from parley.channels.text import SLACK_LIMIT, render_chunks, to_mrkdwn
from parley.core.envelope import Envelope, Reply
from parley.core.handoff import DESK
from parley.errors import InvalidSignature, MalformedPayload, UnsupportedMediaType, UpstreamError
from parley.stores.desk import SqlDeskDirectory

logger = structlog.get_logger("parley.desk")

MAX_AGE_SECONDS = 5 * 60  # Slack's documented replay window
SECTION_LIMIT = 3000  # a Block Kit section's text
ACTIONS = {"parley_claim": "claim", "parley_hand_back": "hand_back", "parley_resolve": "resolve"}
# Subtypes that are a rep writing; edits, deletes, joins, bot posts and the rest are not relayed.
_REP_SUBTYPES = {None, "thread_broadcast", "file_share"}
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_MENTION = re.compile(r"<[@#!][^>]*>\s?")


class SlackDesk:
    """The ``desk`` channel: posts to the handoff channel and reads the reps' actions."""

    name = DESK

    def __init__(self, *, client: WebClient, signing_secret: str, channel: str, directory: SqlDeskDirectory,
                 max_text_chars: int, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.verifier = SignatureVerifier(signing_secret)
        self.channel = channel
        self.directory = directory
        self.max_text_chars = max_text_chars
        self._clock = clock

    # --- in: /slack/interactions (Block Kit buttons), through webhooks.intake.receive ---

    def verify(self, request: Request) -> None:
        verify_signature(self.verifier, request, clock=self._clock)
        if request.mimetype != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType(f"content type {request.mimetype!r}")

    def parse(self, request: Request) -> list[Envelope]:
        payload = _form_json(request, "payload")
        if payload.get("type") != "block_actions":
            logger.info("desk_interaction_ignored", kind=str(payload.get("type"))[:40])
            return []
        actions, user = payload.get("actions"), payload.get("user")
        container = _dict(payload.get("container"))
        if not isinstance(actions, list) or not actions or not isinstance(user, dict):
            raise MalformedPayload("block_actions without actions or user")
        action = actions[0] if isinstance(actions[0], dict) else {}
        kind = ACTIONS.get(str(action.get("action_id")))
        thread = str(container.get("thread_ts") or container.get("message_ts") or "")
        channel = str(container.get("channel_id") or _dict(payload.get("channel")).get("id") or "")
        conversation_id = self.directory.conversation_of(channel, thread) if thread else None
        if kind is None or conversation_id is None:
            logger.info("desk_action_ignored", action=str(action.get("action_id"))[:40], thread=thread[:32])
            return []
        rep = str(user.get("id") or "")
        self.directory.touch(thread, rep)
        return [Envelope(channel=DESK, conversation_id=conversation_id, role="agent", action=kind,
                         message_id=f"action:{action.get('action_ts') or payload.get('trigger_id')}:{rep}",
                         sender=rep, sender_name=str(user.get("name") or user.get("username") or rep),
                         text="", route={"thread_ts": thread})]

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        return Response(status=200)  # the thread shows the outcome once a worker handled it

    # --- in: thread replies from /slack/events (called by SlackAdapter for the handoff channel) ---

    def event_envelopes(self, body: dict[str, Any], event: dict[str, Any], event_id: str) -> list[Envelope]:
        """A rep's reply in a conversation's thread; nothing for anything else in the channel."""
        ignored = _why_ignored(event, body)
        thread = str(event.get("thread_ts") or "")
        if ignored is None and (not thread or thread == event.get("ts")):
            ignored = "not in a thread"
        conversation_id = self.directory.conversation_of(self.channel, thread) if ignored is None else None
        if ignored is None and conversation_id is None:
            ignored = "unknown thread"
        if ignored is not None or conversation_id is None:
            logger.info("desk_event_ignored", reason=ignored, subtype=event.get("subtype"),
                        thread=thread[:32])
            return []
        files = tuple(str(f.get("mimetype") or "file")
                      for f in event.get("files") or [] if isinstance(f, dict))
        rep = str(event["user"])
        self.directory.touch(thread, rep)
        text = clean_text(from_mrkdwn(str(event.get("text") or "")), max_chars=self.max_text_chars,
                          allow_empty=bool(files))
        return [Envelope(channel=DESK, conversation_id=conversation_id, message_id=event_id, sender=rep,
                         sender_name=_display_name(event) or self._name_of(rep), text=text, role="agent",
                         attachments=files, timestamp=_seconds(event.get("ts")) or self._clock(),
                         route={"thread_ts": thread})]

    # --- out ---

    def send(self, replies: Sequence[Reply]) -> None:
        for reply in replies:
            if reply.route.get("kind") == "open":
                self._open(reply)
            else:
                self._post(reply)

    def _open(self, reply: Reply) -> str:
        handoff = int(reply.route.get("handoff") or 0)
        existing = self.directory.thread_of(reply.conversation_id, handoff)
        if existing is not None:  # a retried message: the thread is already there
            return existing
        mrkdwn = to_mrkdwn(reply.text)
        summary = mrkdwn.split("\n", 1)[0]
        section = mrkdwn if len(mrkdwn) <= SECTION_LIMIT else mrkdwn[: SECTION_LIMIT - 1] + "…"
        response = self._call(channel=self.channel, text=summary, blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": section}},
            {"type": "actions", "block_id": "parley_handoff", "elements": _buttons(reply.conversation_id)},
        ])
        thread = str(response.get("ts"))
        self.directory.remember(conversation_id=reply.conversation_id, handoff=handoff,
                                desk_channel=self.channel, thread_ts=thread)
        logger.info("desk_thread_opened", conversation_id=reply.conversation_id, thread=thread)
        return thread

    def _post(self, reply: Reply) -> None:
        handoff = int(reply.route.get("handoff") or 0)
        thread = self.directory.thread_of(reply.conversation_id, handoff) or self.directory.thread_of(
            reply.conversation_id)
        if thread is None:  # the header was never posted (Slack was down): open a plain thread now
            channel = reply.route.get("customer_channel", "?")
            thread = self._open(Reply(conversation_id=reply.conversation_id, channel=DESK,
                                      text=f"**Customer on {channel}** needs a person "
                                           "(the first post failed).",
                                      route={**reply.route, "kind": "open"}))
        kind = reply.route.get("kind")
        text = {"customer": f"**Customer:** {reply.text}", "status": f"_{reply.text}_",
                "error": f":warning: {reply.text}"}.get(str(kind), reply.text)
        for chunk in render_chunks(text, to_mrkdwn, SLACK_LIMIT):
            self._call(channel=self.channel, thread_ts=thread, text=chunk)

    def _call(self, **params: Any) -> dict[str, Any]:
        try:
            response = self.client.chat_postMessage(unfurl_links=False, mrkdwn=True, **params)
        except (SlackClientError, OSError) as exc:  # OSError: URLError, timeouts
            raise UpstreamError(f"Slack chat.postMessage to the handoff channel failed: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _name_of(self, user: str) -> str:
        """The rep's display name from users.info; their id when Slack will not say."""
        try:
            profile = self.client.users_info(user=user).get("user", {}).get("profile", {})
        except (SlackClientError, OSError) as exc:
            logger.info("desk_user_unknown", user=user, error=type(exc).__name__)
            return user
        return str(profile.get("display_name") or profile.get("real_name") or user)


def verify_signature(verifier: SignatureVerifier, request: Request, *, clock: Callable[[], float]) -> None:
    """Slack's signing secret check, with its five-minute replay window."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        raise InvalidSignature("missing X-Slack-Signature or X-Slack-Request-Timestamp")
    if not timestamp.isdigit() or abs(clock() - int(timestamp)) > MAX_AGE_SECONDS:
        raise InvalidSignature(f"stale or bad timestamp {timestamp[:20]!r} (replay?)")
    try:
        valid = verifier.is_valid(body=request.get_data(), timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:  # the SDK decodes the body as UTF-8 first; Slack only sends UTF-8
        valid = False
    if not valid:
        raise InvalidSignature("Slack signature does not match the signing secret")


def from_mrkdwn(text: str) -> str:
    """A rep's Slack text as neutral Markdown: links readable, mentions dropped, entities decoded."""
    text = _LINK.sub(lambda m: f"[{m[2]}]({m[1]})" if m[2] else m[1], text)
    text = _MENTION.sub("", text)
    return html.unescape(text)


def _buttons(conversation_id: str) -> list[dict[str, Any]]:
    def button(action_id: str, label: str, **extra: Any) -> dict[str, Any]:
        return {"type": "button", "action_id": action_id, "value": conversation_id,
                "text": {"type": "plain_text", "text": label}, **extra}
    confirm = {"title": {"type": "plain_text", "text": "Resolve?"},
               "text": {"type": "mrkdwn", "text": "The customer will be asked to rate the help."},
               "confirm": {"type": "plain_text", "text": "Resolve"},
               "deny": {"type": "plain_text", "text": "Cancel"}}
    return [button("parley_claim", "Claim", style="primary"),
            button("parley_hand_back", "Hand back to bot"),
            button("parley_resolve", "Resolve", confirm=confirm)]


def _why_ignored(event: dict[str, Any], body: dict[str, Any]) -> str | None:
    if event.get("type") != "message":
        return f"{event.get('type')} event"  # a mention arrives again as a message event
    if event.get("bot_id") or not event.get("user"):
        return "bot message"
    bot_users = {a.get("user_id") for a in body.get("authorizations") or [] if isinstance(a, dict)}
    if event.get("user") in bot_users:
        return "our own message"
    if event.get("subtype") not in _REP_SUBTYPES:
        return f"subtype {event.get('subtype')}"
    return None


def _seconds(ts: object) -> float | None:
    """A Slack ``ts`` ("1732520400.000300") as epoch seconds; None when it is not one."""
    try:
        seconds = float(str(ts))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _display_name(event: dict[str, Any]) -> str | None:
    profile = event.get("user_profile")
    if not isinstance(profile, dict):
        return None
    return str(profile.get("display_name") or profile.get("real_name") or "") or None


def _form_json(request: Request, field: str) -> dict[str, Any]:
    try:
        value = json.loads(request.form.get(field, ""))
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past Python's limit
        value = None
    if not isinstance(value, dict):
        raise MalformedPayload(f"form field {field!r} is not a JSON object")
    return value
