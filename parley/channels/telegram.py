"""Telegram: Bot API webhook updates in, ``sendMessage`` (HTML parse mode) out.

An answer's quick replies and thumbs are an inline keyboard under it; presses come back as
``callback_query`` updates (``channels/telegram_buttons.py``).

python-telegram-bot is asyncio-only, and its HTTP client belongs to the event loop it first ran
in. The adapter therefore owns one private loop on a daemon thread; worker threads hand their
sends to it and wait for the result, so every call shares one connection pool.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import warnings
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import structlog
from flask import Request, Response
from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from parley.channels.base import BaseAdapter, Once, RecordFeedback, always, clean_text, json_object, post_chunks
from parley.channels.formats import TELEGRAM
from parley.channels.telegram_files import FILE_SECONDS, PHOTO_LIMIT, PHOTO_TYPES, attachments
from parley.channels.telegram_buttons import keyboard, pressed
from parley.channels.text import ENGLISH_TEXTS, as_sent, render_chunks
from parley.core.envelope import Attachment, Envelope, Reply
from parley.core.files import FileBody
from parley.core.texts import Texts
from parley.errors import (FileRefused, InvalidSignature, MalformedPayload, Undeliverable,
                           UnsupportedMediaType, UpstreamError)

logger = structlog.get_logger("parley.telegram")
T = TypeVar("T")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Message attributes that carry something other than text; a caption, when present, is the text.
_NOT_AN_UPDATE = (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError, RecursionError)
# Everything a person sends that is not text is answered (the text-only reply), never ignored.
_MEDIA = ("photo", "document", "sticker", "voice", "video", "video_note", "audio", "animation",
          "location", "venue", "contact", "poll", "dice", "story", "paid_media")


class TelegramAdapter(BaseAdapter):
    name = "telegram"

    def __init__(self, *, bot_token: str, secret_token: str, api_url: str, max_text_chars: int,
                 timeout: float = 10.0, feedback: RecordFeedback | None = None,
                 texts: Texts = ENGLISH_TEXTS) -> None:
        self.secret_token = secret_token.encode("utf-8")
        self.texts = texts  # the ``texts:`` catalogue: "Source:" and the thumbs per language
        self.max_text_chars = max_text_chars
        self.feedback = feedback
        request = HTTPXRequest(connection_pool_size=16, read_timeout=timeout, connect_timeout=timeout,
                               pool_timeout=timeout)
        self.bot = Bot(bot_token, base_url=f"{api_url.rstrip('/')}/bot",
                       base_file_url=f"{api_url.rstrip('/')}/file/bot", request=request)
        self._timeout = timeout * 2
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="parley-telegram")
        self._thread.start()

    def verify(self, request: Request) -> None:
        presented = request.headers.get(SECRET_HEADER, "").encode("utf-8")
        if not hmac.compare_digest(presented, self.secret_token):
            raise InvalidSignature(f"wrong or missing {SECRET_HEADER}")
        if request.mimetype != "application/json":
            raise UnsupportedMediaType(f"content type {request.mimetype!r}")

    def parse(self, request: Request) -> list[Envelope]:
        try:
            update = Update.de_json(json_object(request), None)
            if update is None:
                raise MalformedPayload("body is not a JSON object")
            if update.callback_query is not None:
                return self._pressed(update.update_id, update.callback_query)
            if update.edited_message is not None:
                # As on every channel: the answer to what was sent stands, an edit is no new question.
                logger.info("edit_ignored", message_id=update.edited_message.message_id)
                return []
            message = update.message
            if message is None or message.from_user is None or message.from_user.is_bot:
                return []  # channel posts, member updates...: nothing to answer
            media = tuple(kind for kind in _MEDIA if getattr(message, kind, None))
            if not (message.text or message.caption or media):
                return []  # service messages: someone joined, a pin, a title change...
            return [self.to_envelope(update.update_id, message, media)]
        except _NOT_AN_UPDATE as exc:
            # PTB builds objects from whatever JSON it gets, without checking types: a field of
            # the wrong type fails wherever it is first used (found by tests/fuzz).
            raise MalformedPayload(f"not a Telegram Update: {type(exc).__name__}") from None

    def to_envelope(self, update_id: int, message: Message, media: tuple[str, ...]) -> Envelope:
        # Telegram allows 4,096 characters: answer the start of a long message rather than nothing (clip).
        text = message.text or message.caption or ""
        if not isinstance(text, str):
            raise MalformedPayload("message text is not a string")
        chat_id = str(message.chat.id)
        route = {"chat_id": chat_id}
        if message.is_topic_message and message.message_thread_id:
            route["message_thread_id"] = str(message.message_thread_id)
        user = message.from_user
        return Envelope(channel=self.name, conversation_id=f"telegram:{chat_id}", message_id=str(update_id),
                        sender=str(user.id if user else chat_id),
                        text=clean_text(text, max_chars=self.max_text_chars, allow_empty=True, clip=True),
                        timestamp=message.date.timestamp(), route=route,
                        attachments=attachments(message, media, origin=self.name),
                        # The language of the customer's Telegram app (an IETF tag), when shared.
                        language=_language(user.language_code if user else None),
                        raw={"message_id": message.message_id, "chat_type": message.chat.type})

    def _pressed(self, update_id: int, query: CallbackQuery) -> list[Envelope]:
        """A button under an answer: a quick reply is the customer's next message; a thumb is feedback."""
        press = pressed(query)
        chat = query.message.chat if query.message is not None else None
        if press is None or chat is None:
            logger.info("callback_ignored", update_id=update_id)
            return []
        conversation_id = f"telegram:{chat.id}"
        if press.label is None:
            stored = self.feedback is not None and self.feedback(
                conversation_id=conversation_id, channel=self.name, message_id=press.reply_id, score=press.score)
            logger.info("feedback_stored" if stored else "feedback_unknown_answer",
                        conversation_id=conversation_id, message_id=press.reply_id, score=press.score)
            return []
        route = {"chat_id": str(chat.id)}
        thread = getattr(query.message, "message_thread_id", None)
        if getattr(query.message, "is_topic_message", False) and thread:
            route["message_thread_id"] = str(thread)
        return [Envelope(channel=self.name, conversation_id=conversation_id, message_id=f"callback:{query.id}",
                         sender=str(query.from_user.id),
                         text=clean_text(press.label, max_chars=self.max_text_chars, clip=True),
                         route=route, language=_language(query.from_user.language_code),
                         raw={"event_type": "callback_query"})]

    def ack(self, request: Request, envelopes: Sequence[Envelope]) -> Response:
        for envelope in envelopes:
            if envelope.raw.get("event_type") != "callback_query":
                # "typing…" while a worker prepares the answer; fire and forget, never delays the ack.
                self._fire(self.bot.send_chat_action(chat_id=envelope.route["chat_id"], action=ChatAction.TYPING))
        query = json_object(request).get("callback_query")  # Flask parsed the body once, in parse
        if isinstance(query, dict) and isinstance(query.get("id"), str):
            self._fire(self.bot.answer_callback_query(query["id"]))  # the button stops spinning
        return Response(status=200)

    def send(self, replies: Sequence[Reply], *, once: Once = always) -> None:
        post_chunks(replies, self._posts, self._send, once)

    def chunks(self, reply: Reply) -> list[str]:
        return render_chunks(as_sent(reply, self.texts), TELEGRAM)

    def _posts(self, reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
        """The reply's messages; the keyboard goes under the last one."""
        chunks = self.chunks(reply)
        markup = keyboard(reply, self.texts)
        return [(chunk, markup if index == len(chunks) - 1 else None) for index, chunk in enumerate(chunks)]

    def _send(self, reply: Reply, post: tuple[str, InlineKeyboardMarkup | None]) -> None:
        chunk, markup = post
        thread = reply.route.get("message_thread_id")
        self._run(self.bot.send_message(
            chat_id=reply.route["chat_id"], text=chunk, parse_mode=ParseMode.HTML,
            message_thread_id=int(thread) if thread else None, reply_markup=markup,
            link_preview_options=None, disable_notification=False))

    def fetch_file(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """A customer's file: ``getFile`` says where and how big, then its bytes (a bot gets files
        of up to 20 MB, so even one without a stated size is bounded)."""
        try:
            file = self._run(self.bot.get_file(attachment.ref))
            if file.file_size is not None and file.file_size > max_bytes:
                raise FileRefused(attachment.name, reason=f"over the {max_bytes / 1_000_000:g} MB limit")
            download = file.download_as_bytearray(read_timeout=FILE_SECONDS)
            return bytes(self._run(download, timeout=FILE_SECONDS))
        except FileRefused:
            raise
        except UpstreamError as exc:
            if exc.transient:
                raise
            raise FileRefused(attachment.name, reason=f"Telegram would not hand it over ({exc})") from exc

    def send_file(self, reply: Reply, file: FileBody, *, key: str = "") -> None:
        """A rep's file, with the rep's name as its caption: a photo as a photo, when Telegram
        takes it as one (<= 10 MB, sensible proportions), else as a document."""
        thread = reply.route.get("message_thread_id")
        options = {"caption": reply.author or None, "message_thread_id": int(thread) if thread else None,
                   "write_timeout": FILE_SECONDS, "read_timeout": FILE_SECONDS}
        chat = reply.route["chat_id"]
        if file.content_type in PHOTO_TYPES and len(file.data) <= PHOTO_LIMIT:
            try:
                self._run(self.bot.send_photo(chat, InputFile(file.data, filename=file.name), **options),
                          timeout=FILE_SECONDS)
                return
            except UpstreamError as exc:
                if exc.transient or isinstance(exc, Undeliverable):
                    raise
                # Refused as a photo (PHOTO_INVALID_DIMENSIONS, a long screenshot): nothing was sent.
        self._run(self.bot.send_document(chat, InputFile(file.data, filename=file.name), **options),
                  timeout=FILE_SECONDS)

    def _fire(self, call: Coroutine[Any, Any, Any]) -> None:
        """Fire and forget on the adapter's loop: a failure is logged, the ack never waits."""
        asyncio.run_coroutine_threadsafe(call, self._loop).add_done_callback(_log_failure)

    def set_webhook(self, url: str) -> bool:
        """Register ``url`` and the secret token with the Bot API (``parley telegram set-webhook``)."""
        return self._run(self.bot.set_webhook(url=url, secret_token=self.secret_token.decode("utf-8"),
                                              allowed_updates=["message", "callback_query"]))

    def close(self) -> None:
        try:
            self._run(self.bot.shutdown())
        except UpstreamError as exc:  # closing connections; nothing left to deliver
            logger.warning("telegram_shutdown_failed", detail=str(exc))
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _run(self, call: Coroutine[Any, Any, T], *, timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        waited = self._timeout if timeout is None else timeout + 5  # PTB's own timeout comes first
        try:
            return future.result(waited)
        except TimeoutError as exc:
            # Cancelled, or the call could still go out after the Outbox released it for a retry.
            future.cancel()
            raise UpstreamError(f"Telegram Bot API call timed out after {waited} s",
                                transient=True) from exc
        except TelegramError as exc:
            raise telegram_failure(exc) from exc


def telegram_failure(exc: TelegramError) -> UpstreamError:
    """Transient on flood control (with its retry_after), timeouts, 5xx and network errors.

    PTB raises ``BadRequest`` (a ``NetworkError`` subclass) for a 400, and ``Forbidden``,
    ``InvalidToken``... for the other refusals: those fail the same way every time. A 403 on a
    send is the customer's doing (they blocked the bot, or left the group): ``Undeliverable``.
    """
    if isinstance(exc, Forbidden):
        blocked = "blocked" in exc.message.lower()
        reason = ("they have blocked the bot on Telegram, so nothing reaches them until they unblock it"
                  if blocked else f"Telegram refuses messages to this chat ({exc.message})")
        return Undeliverable(f"Telegram Bot API call failed: {exc}", reason=reason)
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():  # PTB 22 warns it will become a timedelta: both are handled
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = exc.retry_after
        seconds = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
        return UpstreamError(f"Telegram flood control: {exc}", transient=True, retry_after=seconds)
    transient = isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)
    return UpstreamError(f"Telegram Bot API call failed: {exc}", transient=transient)


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("telegram_call_failed", error=type(future.exception()).__name__)


def _language(code: object) -> str | None:
    return code[:35] if isinstance(code, str) and code.strip() else None
