"""Slack: Events API in (DMs and @mentions), ``chat.postMessage`` out.

A mention in a channel is answered in its thread, so each thread is its own conversation; a DM is
answered in the DM. Events the bot must not answer (its own and other bots' messages, edits,
joins, channel chatter it was not mentioned in) parse to nothing, so the bot never talks to itself.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Sequence
from typing import Any

from flask import Request, Response, jsonify
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier

from parley.channels.base import BaseAdapter, Once, RecordFeedback, always, clean_text, json_object, post_chunks
from parley.channels.slack_common import from_a_bot, slack_failure, verify_signature, web_client
from parley.channels.slack_files import SlackFiles, SlackFileSource, attachments
from parley.channels.slack_desk import SlackDesk
from parley.channels.slack_blocks import SlackMessage, to_slack_messages
from parley.channels.slack_buttons import SlackButtons
from parley.channels.text import ENGLISH_TEXTS
from parley.core.envelope import Envelope, Reply
from parley.core.files import FileBody
from parley.core.texts import Texts
from parley.errors import MalformedPayload, UnsupportedMediaType

_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
# Subtypes that are still a person writing; every other subtype (edits, joins, bots) is ignored.
_PERSON_SUBTYPES = {None, "file_share", "thread_broadcast"}
_SLACK_TS = re.compile(r"\d{1,12}(?:\.\d{1,9})?")


class SlackAdapter(SlackFileSource, BaseAdapter):
    name = "slack"

    def __init__(self, *, bot_token: str, signing_secret: str, api_url: str, max_text_chars: int,
                 timeout: float = 10.0, desk: SlackDesk | None = None,
                 feedback: RecordFeedback | None = None, texts: Texts = ENGLISH_TEXTS) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.texts = texts  # the ``texts:`` catalogue: source labels and thumbs per language
        # The reps' handoff channel: what happens there is a rep acting, never a customer writing.
        self.desk = desk
        self.client = web_client(bot_token, api_url, timeout=timeout)
        self.files = SlackFiles(self.client)
        self.max_text_chars = max_text_chars
        # The customers' presses on the answers' buttons (/slack/interactions).
        self.buttons = SlackButtons(verifier=self.verifier, feedback=feedback or _no_feedback,
                                    max_text_chars=max_text_chars)

    def verify(self, request: Request) -> None:
        verify_signature(self.verifier, request, clock=time.time)
        if request.mimetype != "application/json":
            raise UnsupportedMediaType(f"content type {request.mimetype!r}")

    def parse(self, request: Request) -> list[Envelope]:
        body = json_object(request)
        if body.get("type") != "event_callback":
            return []  # url_verification is answered by ack; other types need no answer
        event = body.get("event")
        event_id = body.get("event_id")
        if not isinstance(event, dict) or not isinstance(event_id, str):
            raise MalformedPayload("event_callback without event or event_id")
        if self.desk is not None and event.get("channel") == self.desk.channel:
            return self.desk.event_envelopes(body, event, event_id)
        if not _is_customer_message(event, body):
            return []
        return [self.to_envelope(body, event, event_id)]

    def to_envelope(self, body: dict[str, Any], event: dict[str, Any], event_id: str) -> Envelope:
        team = str(body.get("team_id") or event.get("team") or "")
        channel = _string(event, "channel")
        # Slack allows far longer messages than we read: answer the start rather than nothing (clip).
        text = html.unescape(_MENTION.sub("", str(event.get("text") or "")))
        files = attachments(event.get("files"), origin=self.name)
        route = {"channel": channel}
        conversation_id = f"slack:{team}:{channel}"
        thread = _ts(event, "thread_ts") or (_ts(event, "ts") if event.get("type") == "app_mention" else None)
        if thread:
            # Mentions are answered in a thread, and each thread is a conversation of its own.
            route["thread_ts"] = str(thread)
            conversation_id += f":{thread}"
        return Envelope(channel=self.name, conversation_id=conversation_id, message_id=event_id,
                        sender=_string(event, "user"),
                        # Empty ("@Parley" alone) is still a person writing: the dialogue prompts them.
                        text=clean_text(text, max_chars=self.max_text_chars, allow_empty=True, clip=True),
                        timestamp=float(_ts(event, "ts") or time.time()), attachments=files, route=route,
                        # Message events rarely carry the user's locale (users.info has it, but no
                        # API call may delay the ack): when one does, it is the hint; else the text.
                        language=_locale(event),
                        raw={"team_id": team, "event_type": event.get("type"), "ts": event.get("ts")})

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        body = json_object(request)  # parsed by ``parse`` already
        if body.get("type") == "url_verification":
            return jsonify(challenge=str(body.get("challenge", "")))
        return Response(status=200)

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        post_chunks(replies, lambda reply: to_slack_messages(reply, self.texts), self._post, once)

    def _post(self, reply: Reply, message: SlackMessage) -> None:
        try:
            self.client.chat_postMessage(channel=reply.route["channel"], text=message.text,
                                         blocks=message.blocks, thread_ts=reply.route.get("thread_ts"),
                                         unfurl_links=False, mrkdwn=True)
        except (SlackClientError, OSError) as exc:  # OSError: URLError, timeouts
            raise slack_failure(exc, "Slack chat.postMessage") from exc

    def send_file(self, reply: Reply, file: FileBody, *, key: str = "") -> None:
        """A rep's file, in the customer's DM (or thread), under the rep's name."""
        self.files.upload(file, channel=reply.route["channel"], thread_ts=reply.route.get("thread_ts"),
                          comment=reply.author)


def _no_feedback(**_: object) -> bool:
    return False


def _is_customer_message(event: dict[str, Any], body: dict[str, Any]) -> bool:
    """A person's DM or @mention; never a bot (ourselves included), an edit or a join."""
    if from_a_bot(event, body) or event.get("subtype") not in _PERSON_SUBTYPES:
        return False
    if event.get("type") == "app_mention":
        return True
    # Channel messages come again as app_mention when the bot is mentioned; answer DMs only here.
    return event.get("type") == "message" and event.get("channel_type") == "im"


def _string(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPayload(f"event without {key}")
    return value


def _ts(event: dict[str, Any], key: str) -> str | None:
    """A Slack message timestamp ("1732520100.000200"): a thread's id and a time; None when absent.

    Anything else ("inf", "nan", a number) would be acknowledged, then fail in the worker.
    """
    value = event.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SLACK_TS.fullmatch(value):
        raise MalformedPayload(f"event {key} {str(value)[:20]!r} is not a Slack timestamp")
    return value


def _locale(event: dict[str, Any]) -> str | None:
    locale = event.get("user_locale") or event.get("locale")
    return locale[:35] if isinstance(locale, str) and locale.strip() else None
