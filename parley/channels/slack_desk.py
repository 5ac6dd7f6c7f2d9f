"""The reps' desk in Slack: one thread per handed-off conversation in the handoff channel.

Out (``send``): the dialogue's replies addressed to the desk: the thread's header (channel, masked
customer, reason, last messages, the bot's answers each with "Wrong answer?", the handoff's state and
the buttons that still apply: ``channels/slack_views``), then each customer message and each step in
that thread, after which the header is ``chat.update``d from the handoff log. In: a rep's thread
reply (from ``/slack/events``, through ``event_envelopes``) and a button click (the desk's Bolt
listener calls ``action_envelopes``) become agent envelopes for the *customer's* conversation,
found from the thread through the directory.
Bot echoes, edits, deletes, top-level chatter and threads Parley does not know parse to nothing.
"""

from __future__ import annotations

import functools
import html
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import structlog
from cachetools import TTLCache
from flask import Request, Response
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.signature import SignatureVerifier

from parley.channels.base import BaseAdapter, Once, always, clean_text
from parley.channels.slack_common import (as_dict, from_a_bot, interaction_payload, slack_failure,
                                         verify_signature)
from parley.channels.slack_files import SlackFiles, SlackFileSource, attachments
from parley.channels.formats import SLACK
from parley.channels.slack_home import DeskHome
from parley.channels.slack_views import ANSWERS_SHOWN, CLAIM, HAND_BACK, RESOLVE, header_blocks
from parley.channels.text import render_chunks
from parley.core.files import FileBody
from parley.core.desk import QUEUE_STEPS, DeskDirectory, DeskPost
from parley.core.desk_texts import DESK_TEXTS, DeskTexts
from parley.core.envelope import Envelope, Reply
from parley.core.handoff import DESK
from parley.errors import MalformedPayload, UnsupportedMediaType, UpstreamError

logger = structlog.get_logger("parley.desk")

SECTION_LIMIT = 3000  # a Block Kit section's text
ACTIONS = {CLAIM: "claim", HAND_BACK: "hand_back", RESOLVE: "resolve"}
# Subtypes that are a rep writing; edits, deletes, joins, bot posts and the rest are not relayed.
_REP_SUBTYPES = {None, "thread_broadcast", "file_share"}
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_MENTION = re.compile(r"<[@#!][^>]*>\s?")
_NUMBERED = re.compile(r"_\d+$")


class SlackDesk(SlackFileSource, BaseAdapter):
    """The ``desk`` channel: posts to the handoff channel and reads the reps' actions."""

    name = DESK

    def __init__(self, *, client: WebClient, signing_secret: str, channel: str, directory: DeskDirectory,
                 max_text_chars: int, texts: DeskTexts = DESK_TEXTS,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.files = SlackFiles(client)
        self.texts = texts
        self.verifier = SignatureVerifier(signing_secret)
        self.channel = channel
        self.directory = directory
        self.home = DeskHome(client=client, directory=directory, texts=texts, clock=clock)
        self.max_text_chars = max_text_chars
        self._clock = clock
        # Reps' display names, so users.info is asked once an hour per rep, not per message.
        self._names: TTLCache[str, str] = TTLCache(maxsize=1024, ttl=3600)
        self._names_lock = threading.Lock()

    # --- in: /slack/interactions (Block Kit buttons), through webhooks.intake.receive ---

    def verify(self, request: Request) -> None:
        verify_signature(self.verifier, request, clock=self._clock)
        if request.mimetype != "application/x-www-form-urlencoded":
            raise UnsupportedMediaType(f"content type {request.mimetype!r}")

    def parse(self, request: Request) -> list[Envelope]:
        return self.action_envelopes(interaction_payload(request))

    def action_envelopes(self, payload: dict[str, Any]) -> list[Envelope]:
        """A rep's Claim / Hand back / Resolve, on a thread's header or on the App Home tab."""
        if payload.get("type") != "block_actions":
            logger.info("desk_interaction_ignored", kind=str(payload.get("type"))[:40])
            return []
        actions, user = payload.get("actions"), payload.get("user")
        container = as_dict(payload.get("container"))
        if not isinstance(actions, list) or not actions or not isinstance(user, dict):
            raise MalformedPayload("block_actions without actions or user")
        action = actions[0] if isinstance(actions[0], dict) else {}
        kind = ACTIONS.get(_NUMBERED.sub("", str(action.get("action_id"))))  # App Home's are numbered
        if container.get("type") == "view":  # App Home: the button names the conversation
            conversation_id = str(action.get("value") or "")[:200]
            thread = (self.directory.thread_of(conversation_id) or "") if conversation_id else ""
        else:
            thread = str(container.get("thread_ts") or container.get("message_ts") or "")
            channel = str(container.get("channel_id") or as_dict(payload.get("channel")).get("id") or "")
            conversation_id = (self.directory.conversation_of(channel, thread) or "") if thread else ""
        if kind is None or not conversation_id or not thread:
            logger.info("desk_action_ignored", action=str(action.get("action_id"))[:40], thread=thread[:32])
            return []
        rep = str(user.get("id") or "")
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
        files = attachments(event.get("files"), origin=self.name)
        rep = str(event["user"])
        # Clipped like a customer's: refused, Slack would retry it and count the app as failing.
        text = clean_text(from_mrkdwn(str(event.get("text") or "")), max_chars=self.max_text_chars,
                          allow_empty=bool(files), clip=True)
        return [Envelope(channel=DESK, conversation_id=conversation_id, message_id=event_id, sender=rep,
                         sender_name=_display_name(event), text=text, role="agent",
                         attachments=files, timestamp=_seconds(event.get("ts")) or self._clock(),
                         route={"thread_ts": thread})]

    # --- in, worker side: what the request leaves out to ack within Slack's 3 s ---

    def prepare(self, envelope: Envelope) -> Envelope:
        """Note the rep who acted in the thread (a DB write) and name them (users.info, up to 10 s)."""
        thread = envelope.route.get("thread_ts")
        if envelope.role != "agent" or not thread:
            return envelope
        self.directory.touch(thread, envelope.sender)
        if envelope.sender_name:
            return envelope
        return replace(envelope, sender_name=self._name_of(envelope.sender))

    # --- out ---

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        for reply in replies:
            # A reply without a DeskPost was made by code older than DeskPost (see from_route).
            post = reply.desk or DeskPost.from_route(reply.route)
            if post.kind == "open":
                self._open(reply, post)  # idempotent already: the directory knows an opened thread
            else:
                self._post(reply, post, once)

    def _open(self, reply: Reply, post: DeskPost) -> str:
        existing = self.directory.thread_of(reply.conversation_id, post.handoff)
        if existing is not None:  # a retried message: the thread is already there
            return existing
        # The section holds what fits of the header, cut between whole lines or words (never
        # inside a link), and the notification text its first line.
        sections = render_chunks(reply.text, SLACK, SECTION_LIMIT - 1)
        section = sections[0] + ("…" if len(sections) > 1 else "") if sections else "…"
        summary = section.split("\n", 1)[0]
        response = self._call(channel=self.channel, text=summary,
                              blocks=self._header(reply.conversation_id, section))
        thread = str(response.get("ts"))
        self.directory.remember(conversation_id=reply.conversation_id, handoff=post.handoff,
                                desk_channel=self.channel, thread_ts=thread)
        logger.info("desk_thread_opened", conversation_id=reply.conversation_id, thread=thread)
        self.home.refresh()  # one more request waiting
        return thread

    def _thread_of(self, reply: Reply, post: DeskPost) -> str | None:
        """The thread of the reply's handoff, else the conversation's latest."""
        return (self.directory.thread_of(reply.conversation_id, post.handoff)
                or self.directory.thread_of(reply.conversation_id))

    def _post(self, reply: Reply, post: DeskPost, once: Once) -> None:
        thread = self._thread_of(reply, post)
        if thread is None:  # the header was never posted (Slack was down): open a plain thread now
            header = self.texts.first_post_failed.format(channel=post.customer_channel or "?")
            thread = self._open(replace(reply, text=header), replace(post, kind="open"))
        text = {"customer": f"**{self.texts.speaker_customer}:** {reply.text}", "status": f"_{reply.text}_",
                "error": f":warning: {reply.text}", "header": ""}.get(post.kind, reply.text)
        # Each chunk through ``once``, even a lone one: the desk's replies come several at a time.
        for index, chunk in enumerate(render_chunks(text, SLACK)):
            once(f"{reply.reply_id}#{index}",
                 functools.partial(self._call, channel=self.channel, thread_ts=thread, text=chunk))
        if post.kind in ("status", "header"):  # a step: the header shows it and the buttons it leaves
            self._refresh(reply.conversation_id, post.handoff, thread, once, key=f"{reply.reply_id}#header")
            if reply.meta.intent in QUEUE_STEPS:  # a request taken, handed back or resolved
                self.home.refresh()

    def send_file(self, reply: Reply, file: FileBody, *, key: str = "") -> None:
        """A customer's file, in their conversation's thread (after the line that says they sent it)."""
        thread = self._thread_of(reply, reply.desk or DeskPost.from_route(reply.route))
        if thread is None:  # the thread's header failed and so did the customer's line: nowhere to go
            raise UpstreamError("no thread in the handoff channel for this conversation", transient=True)
        self.files.upload(file, channel=self.channel, thread_ts=thread)

    def _header(self, conversation_id: str, section: str) -> list[dict[str, Any]]:
        """The header's blocks as the log says the handoff stands now."""
        return header_blocks(section, conversation_id, self.directory.thread_state(conversation_id),
                             self.directory.answers(conversation_id, ANSWERS_SHOWN), now=self._clock(),
                             texts=self.texts)

    def _refresh(self, conversation_id: str, handoff: int, thread: str, once: Once, *, key: str) -> None:
        """``chat.update`` the header of the conversation's latest thread (an older one stays as it was)."""
        text = self.directory.header_of(conversation_id, handoff)
        if text is None or self.directory.thread_of(conversation_id) != thread:
            return
        sections = render_chunks(text, SLACK, SECTION_LIMIT - 1)
        section = sections[0] + ("…" if len(sections) > 1 else "") if sections else "…"
        once(key, functools.partial(self._update, ts=thread, text=section.split("\n", 1)[0],
                                    blocks=self._header(conversation_id, section)))

    def _update(self, **params: Any) -> None:
        try:
            self.client.chat_update(channel=self.channel, **params)
        except (SlackClientError, OSError) as exc:
            raise slack_failure(exc, "Slack chat.update of a thread header") from exc

    def _call(self, **params: Any) -> dict[str, Any]:
        try:
            response = self.client.chat_postMessage(unfurl_links=False, mrkdwn=True, **params)
        except (SlackClientError, OSError) as exc:  # OSError: URLError, timeouts
            raise slack_failure(exc, "Slack chat.postMessage to the handoff channel") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}

    def _name_of(self, user: str) -> str:
        """The rep's display name from users.info (remembered); their id when Slack will not say."""
        with self._names_lock:
            known = self._names.get(user)
        if known is not None:
            return known
        try:
            profile = self.client.users_info(user=user).get("user", {}).get("profile", {})
        except (SlackClientError, OSError) as exc:
            logger.info("desk_user_unknown", user=user, error=type(exc).__name__)
            return user
        name = str(profile.get("display_name") or profile.get("real_name") or user)
        with self._names_lock:
            self._names[user] = name
        return name


def from_mrkdwn(text: str) -> str:
    """A rep's Slack text as neutral Markdown: links readable, mentions dropped, entities decoded."""
    text = _LINK.sub(lambda m: f"[{m[2]}]({m[1]})" if m[2] else m[1], text)
    text = _MENTION.sub("", text)
    return html.unescape(text)


def _why_ignored(event: dict[str, Any], body: dict[str, Any]) -> str | None:
    if event.get("type") != "message":
        return f"{event.get('type')} event"  # a mention arrives again as a message event
    if from_a_bot(event, body):
        return "bot message"
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


def _display_name(event: dict[str, Any]) -> str | None:
    profile = event.get("user_profile")
    if not isinstance(profile, dict):
        return None
    return str(profile.get("display_name") or profile.get("real_name") or "") or None
