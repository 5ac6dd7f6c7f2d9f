"""Twilio: SMS and WhatsApp messages in by webhook, replies out through the Messages REST API.

WhatsApp arrives on the same webhook with ``whatsapp:``-prefixed addresses. The prefix stays on
both addresses, so the conversation id tells the two apart and the reply goes back from the very
number (or WhatsApp sender) the customer wrote to.

Quick replies follow the answer as a numbered list; the customer's next message "2" picks the
second (``core.options``). WhatsApp's own reply buttons need a Content API template per set of
labels, so WhatsApp gets the numbered list too.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import requests
from flask import Request, Response
from requests import ConnectionError as RequestsConnectionError
from requests import RequestException, Timeout
from twilio.base.exceptions import TwilioException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from parley.channels.base import BaseAdapter, Once, always, clean_text, post_chunks
from parley.channels.files import download, origin_of
from parley.channels.formats import PLAIN
from parley.channels.text import ENGLISH_TEXTS, as_sent, render_chunks
from parley.core.envelope import Attachment, Envelope, Reply
from parley.core.files import FileBody, FileStore
from parley.core.markdown import escape
from parley.core.texts import Texts
from parley.errors import (FileRefused, InvalidSignature, MalformedPayload, Undeliverable,
                           UnsupportedMediaType, UpstreamError)

FORM = "application/x-www-form-urlencoded"
MEDIA_LIMIT = 5_000_000
MEDIA_SECONDS = 4 * 3600  # Twilio fetches at once; a queued WhatsApp message may wait a while
# Twilio error codes that say this customer cannot be written to now, in words for the reps.
UNDELIVERABLE = {
    63016: ("WhatsApp lets a business reply only within 24 hours of the customer's last message, and "
            "that window has closed: nothing reaches them until they write again"),
    21610: "they have opted out of messages from this number (they replied STOP)",
}


class TwilioAdapter(BaseAdapter):
    name = "twilio"

    def __init__(self, *, account_sid: str, auth_token: str, api_url: str, public_url: str | None,
                 max_text_chars: int, timeout: float = 10.0, texts: Texts = ENGLISH_TEXTS,
                 media: FileStore | None = None) -> None:
        self.validator = RequestValidator(auth_token)
        # max_retries stays None: a retried create after a lost response would send the SMS twice.
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        # The Api domain's base URL is where every Messages call goes (a gateway, or a test stub).
        self.client.api.base_url = api_url.rstrip("/")
        # Customers' media: fetched from Twilio's API host (or the configured one) and nowhere else.
        self._files, self._timeout = requests.Session(), timeout * 3
        self._media_origins = {"https://api.twilio.com", origin_of(api_url)}
        self.media = media  # a rep's files, kept for Twilio to fetch from /twilio/media/<token>
        self.public_url = public_url.rstrip("/") if public_url else None
        self.max_text_chars = max_text_chars
        self.texts = texts  # the ``texts:`` catalogue: "Source:" and "Reply with a number:" per language

    def verify(self, request: Request) -> None:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature:
            raise InvalidSignature("missing X-Twilio-Signature")
        if request.mimetype != FORM:
            raise UnsupportedMediaType(f"content type {request.mimetype!r}")
        url = self.signed_url(request)
        if not self.validator.validate(url, request.form, signature):
            raise InvalidSignature(f"Twilio signature does not match {url} and the auth token")

    def signed_url(self, request: Request) -> str:
        """The URL Twilio requested: the public URL when set, else the request's own.

        Behind an Ingress the request's scheme and host are the public ones only because ProxyFix
        (``server.trusted_proxies``) rewrote them from the proxies it trusts. Reading
        ``X-Forwarded-*`` here instead would let anyone name the host a signature was made for.
        """
        path = request.full_path if request.query_string else request.path
        if self.public_url:
            return self.public_url + path
        return f"{request.scheme}://{request.host}{path}"

    def parse(self, request: Request) -> list[Envelope]:
        form = request.form
        sender, recipient, sid = form.get("From", ""), form.get("To", ""), form.get("MessageSid", "")
        if not sender or not recipient or not sid:
            raise MalformedPayload("form without From, To or MessageSid")
        media_count = _count(form.get("NumMedia", "0"))
        media = tuple(self._media(form, index) for index in range(min(media_count, 10)))
        # A WhatsApp quick-reply button sends its label; a location pin, contact or the like has no
        # text at all: still a customer writing, answered (the text-only reply), never refused.
        body = form.get("Body", "") or form.get("ButtonText", "")
        text = clean_text(body, max_chars=self.max_text_chars, allow_empty=True, clip=True)
        if not text and not media:
            media = (Attachment(content_type=form.get("MessageType", "")[:100] or "message"),)
        variant = "whatsapp" if sender.startswith("whatsapp:") else "sms"
        return [Envelope(channel=self.name, conversation_id=f"twilio:{sender}:{recipient}", message_id=sid,
                         sender=sender, text=text, timestamp=time.time(), attachments=media,
                         route={"to": sender, "from": recipient, "variant": variant},
                         raw={k: form[k] for k in ("AccountSid", "MessagingServiceSid", "ProfileName",
                                                   "WaId", "FromCountry") if k in form})]

    def _media(self, form: Mapping[str, str], index: int) -> Attachment:
        """Media N of an MMS or WhatsApp message, fetched later from Twilio's media URL."""
        content_type = form.get(f"MediaContentType{index}", "")[:100] or "media"
        url = form.get(f"MediaUrl{index}", "")[:2000]
        extension = content_type.rsplit("/", 1)[-1].split("+", 1)[0].replace("jpeg", "jpg")
        return Attachment(content_type=content_type, name=f"media-{index + 1}.{extension}",
                          origin=self.name if url else "", ref=url)

    def fetch_file(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """Twilio's media URL answers with the account's credentials; it redirects to Twilio's CDN,
        where ``requests`` leaves them behind."""
        return download(attachment.ref, session=self._files, max_bytes=max_bytes, name=attachment.name,
                        timeout=self._timeout, allowed=self._media_origins, what="Twilio",
                        auth=(self.client.username, self.client.password))

    def send_file(self, reply: Reply, file: FileBody, *, key: str = "") -> None:
        """A rep's file as MMS or WhatsApp media: Twilio fetches it from our public URL, so one
        must be set, and takes up to 5 MB (its limit for MMS and for WhatsApp images)."""
        if self.media is None or self.public_url is None:
            raise FileRefused(file.name, reason="Twilio fetches media from Parley's public URL, and none is set "
                                                "(server.public_url, PARLEY_PUBLIC_URL)")
        if len(file.data) > MEDIA_LIMIT:
            raise FileRefused(file.name, reason=f"over Twilio's {MEDIA_LIMIT // 1_000_000} MB media limit")
        token = self.media.keep(file, seconds=MEDIA_SECONDS)
        try:
            self.client.messages.create(to=reply.route["to"], from_=reply.route["from"], body=reply.author or "",
                                        media_url=[f"{self.public_url}/twilio/media/{token}"])
        except (TwilioException, RequestException) as exc:
            raise twilio_failure(exc) from exc

    def kept_media(self, token: str) -> FileBody | None:
        return self.media.get(token) if self.media is not None and token else None

    def close(self) -> None:
        self._files.close()

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        # Empty TwiML: the answer goes later by REST, once a worker has it.
        return Response(str(MessagingResponse()), status=200, mimetype="text/xml")

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        post_chunks(replies, self.chunks, self._create, once)

    def chunks(self, reply: Reply) -> list[str]:
        options = numbered_options(reply.quick_replies, self.texts.get("reply_with_number", reply.language))
        return render_chunks(as_sent(reply, self.texts) + options, PLAIN)

    def _create(self, reply: Reply, chunk: str) -> None:
        try:
            self.client.messages.create(to=reply.route["to"], from_=reply.route["from"], body=chunk)
        except (TwilioException, RequestException) as exc:
            raise twilio_failure(exc) from exc


def twilio_failure(exc: TwilioException | RequestException) -> UpstreamError:
    """Transient on 429 (Twilio's concurrency limit), 5xx and network errors; else permanent.

    The SDK's exception carries no response headers, so there is no Retry-After to honour.
    """
    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    if code in UNDELIVERABLE:
        return Undeliverable(f"Twilio messages.create failed (HTTP {status}, error {code}): {exc}",
                             reason=UNDELIVERABLE[code])
    transient = isinstance(exc, (RequestsConnectionError, Timeout)) or (
        isinstance(status, int) and (status == 429 or status >= 500))
    return UpstreamError(f"Twilio messages.create failed (HTTP {status}): {exc}", transient=transient)


def numbered_options(labels: Sequence[str], prompt: str = ENGLISH_TEXTS.get("reply_with_number")) -> str:
    """Markdown under the answer: ``prompt`` ("Reply with a number:"), then the options as an
    ordered list, to be answered by number."""
    if not labels:
        return ""
    items = "\n".join(f"{number}. {escape(label)}" for number, label in enumerate(labels, start=1))
    return f"\n\n{escape(prompt)}\n\n{items}"


def _count(value: str) -> int:
    # Not ``str.isdigit``: it also admits "¹", which ``int`` refuses (a 500 the fuzz test found).
    try:
        return max(0, int(value))
    except ValueError:
        return 0
