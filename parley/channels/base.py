"""The interfaces every channel adapter satisfies, their defaults, and the text clean-up they share."""

from __future__ import annotations

import functools
import math
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from flask import Request, Response

from parley.core.envelope import Attachment, Envelope, Reply, envelope_fields
from parley.errors import MalformedPayload, PayloadTooLarge

# C0/C1 control characters other than tab and newline carry nothing a customer meant to say.
NOT_UNICODE = "message is not valid Unicode text"
_YEAR_10000 = 253_402_300_800  # epoch seconds: the stores' datetimes end with year 9999
Chunk = TypeVar("Chunk")  # what one post carries: a text, or a Slack message's text and blocks
# A thumb pressed under an answer: record_feedback(conversation_id=, channel=, message_id=, score=)
# -> whether that answer exists (the conversation log's, wired by the app factory).
RecordFeedback = Callable[..., bool]
_CONTROL = {cp: None for cp in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, *range(0x80, 0xA0))}


class ChannelAdapter(Protocol):
    """Where one channel's replies go, and everything the worker may ask of its adapter.

    ``BaseAdapter`` gives every hook but ``send`` a default that does nothing, so an adapter
    writes only what its channel needs.
    """

    name: str

    def send(self, replies: Sequence[Reply], *, once: Once = ...) -> None:
        """Deliver the replies to one message, in order; raise ``UpstreamError`` on failure.

        An adapter that posts in several steps (replies, chunks of a long reply) runs each step
        through ``once`` (``post_chunks``), so a retry after a failure at step N skips steps 1..N-1.
        """
        ...

    def prepare(self, envelope: Envelope) -> Envelope:
        """The envelope finished in the worker: work too slow for the webhook's ack (Slack's 3 s),
        such as a Web API look-up or a database write."""
        ...

    def drain(self) -> None:
        """The process is stopping: end what holds requests open (browsers reconnect elsewhere)."""
        ...

    def close(self) -> None:
        """Release connections and threads; nothing is sent afterwards."""
        ...


class WebhookIntake(Protocol):
    """What ``webhooks.intake`` asks of a request's receiver: verify, parse, acknowledge. A receiver
    whose replies go out through another adapter (Slack's answer buttons) is this alone."""

    name: str

    def verify(self, request: Request) -> None:
        """Raise ``InvalidSignature`` (or another ``ChannelError``) unless the request is genuine
        and may be taken now (the widget: its origin and rate limits too)."""
        ...

    def parse(self, request: Request) -> list[Envelope]:
        """Envelopes to answer; empty for events that need no answer (handshakes, bot echoes)."""
        ...

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        """The platform's response, once every envelope is durably in the inbox."""
        ...


class WebhookAdapter(ChannelAdapter, WebhookIntake, Protocol):
    """A channel whose messages arrive by HTTP and whose replies it sends itself."""


class BaseAdapter:
    """The defaults of ``ChannelAdapter``'s hooks: nothing to prepare, drain or close."""

    def prepare(self, envelope: Envelope) -> Envelope:
        return envelope

    def drain(self) -> None:
        return None

    def close(self) -> None:
        return None


def prepared(envelope: Envelope, adapters: Mapping[str, ChannelAdapter]) -> Envelope:
    """The envelope as its channel's adapter finishes it in the worker; unchanged without one
    (the system's scheduled re-checks)."""
    adapter = adapters.get(envelope.channel)
    return envelope if adapter is None else adapter.prepare(envelope)


# ``once(key, step)``: run ``step`` unless a step with this key already went out. The Outbox backs
# it with the send ledger; a failing step is forgotten, so the retry runs it again.
Once = Callable[[str, Callable[[], object]], None]


def always(key: str, step: Callable[[], object]) -> None:
    """The ``Once`` of a direct call (a test, the CLI): no ledger, every step runs."""
    step()


def post_chunks(replies: Sequence[Reply], chunks_of: Callable[[Reply], list[Chunk]],
                post: Callable[[Reply, Chunk], object], once: Once) -> None:
    """Post each reply's chunks in order, stopping at the first failure.

    With several posts, each goes through ``once`` keyed "<reply id>#<chunk>". A lone post runs
    directly: the Outbox's claim on its reply covers it (two ledger writes saved per short answer).
    """
    posts = [(f"{reply.reply_id}#{index}", reply, chunk)
             for reply in replies for index, chunk in enumerate(chunks_of(reply))]
    if len(posts) == 1:
        post(posts[0][1], posts[0][2])
        return
    for key, reply, chunk in posts:
        once(key, functools.partial(post, reply, chunk))


def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, parsed once per request: Flask keeps it for the next caller."""
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # "[[[[…" nested past Python's limit, outside our app's JSON provider
        body = None
    if not isinstance(body, dict):
        raise MalformedPayload("body is not a JSON object")
    return body


def clean_text(text: object, *, max_chars: int, allow_empty: bool = False, clip: bool = False) -> str:
    """NFC-normalised text without control characters, within the length limit.

    ``clip``: a platform's message (which cannot be told "too long") is cut at the limit instead of
    refused. The cut comes after normalising, because NFC can lengthen text (U+0958 becomes two).
    """
    if not isinstance(text, str):
        raise MalformedPayload("text is not a string", public="message text must be a string")
    if not encodable(text):
        raise MalformedPayload("text with a lone surrogate", public=NOT_UNICODE)
    cleaned = unicodedata.normalize("NFC", text).translate(_CONTROL).strip()
    if clip:
        cleaned = cleaned[:max_chars].rstrip()
    if not cleaned and not allow_empty:
        raise MalformedPayload("empty text", public="message text is empty")
    if len(cleaned) > max_chars:
        raise PayloadTooLarge(f"text of {len(cleaned)} characters",
                              public=f"message too long (max {max_chars} characters)")
    return cleaned


def storable(envelope: Envelope) -> Envelope:
    """The envelope, once every value a worker will write is one the stores can take.

    JSON may carry a lone surrogate (``"\\ud800"``), which no UTF-8 database stores, PostgreSQL
    refuses NUL characters, and a time must be one a ``datetime`` can hold. Found here, the
    request gets a 400; found in the worker, the message would have been acknowledged, failed at
    every attempt and been dead-lettered.
    """
    if not (math.isfinite(envelope.timestamp) and 0 <= envelope.timestamp < _YEAR_10000):
        raise MalformedPayload(f"timestamp {envelope.timestamp} is not a time", public="bad timestamp")
    for name, value in _strings(envelope_fields(envelope)):
        if "\x00" in value or not encodable(value):
            raise MalformedPayload(f"{name} holds a NUL or a lone surrogate", public=NOT_UNICODE)
    return envelope


def _strings(value: object, name: str = "envelope") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key, name)
            yield from _strings(item, f"{name}.{key}" if isinstance(key, str) and encodable(key) else name)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, name)
    elif isinstance(value, Attachment):
        yield from _strings([value.content_type, value.name, value.origin, value.ref], f"{name}.attachment")


def encodable(text: str) -> bool:
    """Whether the text can be written as UTF-8 (a lone surrogate cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
