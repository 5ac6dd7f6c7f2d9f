"""The two values that cross every boundary: an inbound ``Envelope`` and an outbound ``Reply``."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from parley.core.desk import DeskPost


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """A file a message carried: what it says it is, and how the channel it came by fetches it.

    ``origin`` names the adapter that can fetch it (the customer's channel, or ``desk`` for a rep's
    file) and ``ref`` is that adapter's handle (Slack's download URL, Telegram's file id, Twilio's
    media URL); empty when the platform sent something that is not a file (a sticker, a location).
    ``size`` is the size the platform declared, when it did.
    """

    content_type: str
    name: str = ""
    size: int | None = None
    origin: str = ""
    ref: str = ""

    @property
    def fetchable(self) -> bool:
        return bool(self.origin and self.ref)


def attachments_of(values: Any) -> tuple[Attachment, ...]:
    """Attachments as stored: objects (JSON), or the bare content types older entries held."""
    return tuple(Attachment(content_type=value) if isinstance(value, str) else
                 value if isinstance(value, Attachment) else Attachment(**value) for value in values or ())


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One customer message, whatever channel it came from, or one support rep's action.

    ``route`` tells the channel adapter where replies go (a chat id, a thread, a phone number);
    ``raw`` keeps platform leftovers. The core carries both and reads neither.

    ``role`` says who speaks: the customer, a support rep (``agent``: a thread reply or a button in
    the reps' channel, for the customer's conversation) or Parley itself (``system``: a scheduled
    re-check). ``action`` names what a rep or the system did (see ``parley.core.handoff``);
    ``sender_name`` is the rep's display name; ``language`` the channel's hint of the customer's.
    Rep actions travel through the same inbox as the customer's messages, so one worker handles a
    conversation's both sides in order.
    """

    channel: str
    conversation_id: str
    message_id: str
    sender: str
    text: str
    timestamp: float = field(default_factory=time.time)
    attachments: tuple[Attachment, ...] = ()
    route: Mapping[str, str] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    role: Literal["customer", "agent", "system"] = "customer"
    action: str | None = None
    sender_name: str | None = None
    # The customer's language as their channel states it (a BCP 47 tag such as "es" or "pt-BR":
    # Telegram's language_code, Slack's user locale, the browser's), or None when it does not say.
    language: str | None = None

    @property
    def dedupe_key(self) -> str:
        """The platform's own id for this message, scoped by channel."""
        return f"{self.channel}:{self.message_id}"

    @property
    def is_media_only(self) -> bool:
        return bool(self.attachments) and not self.text.strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A knowledge-base article an answer was grounded on, and where customers can read it."""

    id: str
    title: str
    url: str | None = None

    def to_dict(self) -> dict[str, str]:
        """As stored and sent (the log, the cache, the widget); no ``url`` key when it has none."""
        return {"id": self.id, "title": self.title, **({"url": self.url} if self.url else {})}


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerMeta:
    """What produced a reply; logged for data scientists, never shown as-is to customers."""

    engine: str = "dialogue"
    confidence: float | None = None
    sources: tuple[Source, ...] = ()
    cached: bool = False
    latency_ms: float | None = None
    model_version: str | None = None
    intent: str | None = None
    # LLM accounting: the model that wrote the reply and the tokens it billed (None offline/cached).
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """One outbound message: neutral Markdown text plus what produced it.

    ``route`` is where the customer's channel delivers it (as the envelope's route said); a reply
    to the reps' desk has none and says in ``desk`` what it is instead. ``language`` is the
    conversation's (``texts:``), so the channel words its own fixed texts ("Source:", buttons) in
    it; None: the default language. ``files`` go after the text (a rep's file to the customer, a
    customer's file to the reps' thread), each fetched from its origin when it is sent.
    """

    conversation_id: str
    channel: str
    text: str
    route: Mapping[str, str] = field(default_factory=dict)
    desk: DeskPost | None = None
    in_reply_to: str | None = None
    quick_replies: tuple[str, ...] = ()
    meta: AnswerMeta = AnswerMeta()
    author: str | None = None
    reply_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    language: str | None = None
    files: tuple[Attachment, ...] = ()


def reply_id(envelope: Envelope, index: int) -> str:
    """Deterministic, so a retried message produces the same reply ids and is sent only once."""
    digest = hashlib.sha256(envelope.dedupe_key.encode("utf-8")).hexdigest()[:24]
    return f"{digest}-{index}"


def envelope_fields(envelope: Envelope) -> dict[str, Any]:
    """The envelope's fields by name, values as they are: ``asdict`` would deep-copy ``raw``, the
    platform's whole payload, on every webhook (a tenth of an acknowledgement's CPU, with the check
    in ``channels.base.storable``)."""
    return {name: getattr(envelope, name) for name in _ENVELOPE_FIELDS}


def envelope_to_json(envelope: Envelope) -> str:
    return json.dumps(envelope_fields(envelope), separators=(",", ":"), default=_plain)


def envelope_from_json(data: str | bytes) -> Envelope:
    fields = json.loads(data)
    fields["attachments"] = attachments_of(fields.get("attachments"))
    return Envelope(**fields)


def reply_to_json(reply: Reply) -> str:
    return json.dumps(asdict(reply), separators=(",", ":"), default=_plain)


def reply_from_json(data: str | bytes) -> Reply:
    fields = json.loads(data)
    meta = fields.pop("meta")
    meta["sources"] = tuple(Source(**source) for source in meta.get("sources") or ())
    fields["quick_replies"] = tuple(fields.get("quick_replies") or ())
    fields["files"] = attachments_of(fields.get("files"))
    desk = fields.pop("desk", None)  # absent from replies stored before DeskPost
    return Reply(meta=AnswerMeta(**meta), desk=DeskPost(**desk) if desk else None, **fields)


_ENVELOPE_FIELDS = tuple(item.name for item in fields(Envelope))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Attachment):
        return {item.name: getattr(value, item.name) for item in fields(Attachment)}
    raise TypeError(f"cannot serialise {type(value).__name__}")
