"""Files in the widget: a customer's upload, kept for the message that carries it, and a rep's
file, kept for the browser, each under an address that is its own key.

A rep's file is kept under ``ConversationKeys.file_token("<reply id>#file<n>")``: the history
finds it again from the logged reply, and nobody without the widget's key can name it. A
customer's upload is kept under "<conversation id>.<random>", so a message can only carry the
files uploaded to its own conversation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace

from parley.channels.files import FileRules
from parley.core.envelope import Attachment
from parley.core.files import FileBody, FileStore
from parley.core.log import LoggedMessage
from parley.errors import FileRefused, MalformedPayload, PayloadTooLarge, UnsupportedMediaType

FILES_PATH = "/widget/api/files"  # a file, by its token
FILE_SECONDS = 7 * 24 * 3600  # a rep's: a week of the chat's history shows it; Redis holds none for good
UPLOAD_SECONDS = 3600  # a customer's: until its message is sent and a worker passes it on
UPLOADS_PER_HOUR = 30  # per address: files are what fills the store
MAX_FILES = 5  # per message
ORIGIN = "widget"
FileToken = Callable[[str], str] | None


def files_json(message: LoggedMessage, file_token: FileToken) -> list[dict[str, object]]:
    """A message's files as the browser shows them: a rep's with their address, a customer's by
    name (its own browser showed it when sent)."""
    if message.direction == "in":
        return [{"name": file.name, "type": file.content_type} for file in message.files]
    if file_token is None:
        return []
    return [{"name": file.name, "type": file.content_type,
             "url": f"{FILES_PATH}/{_token(message.id, index, file, file_token)}"}
            for index, file in enumerate(message.files)]


def one_per_file(message: LoggedMessage, file_token: Callable[[str], str],
                 kept: Callable[[str], bool]) -> list[LoggedMessage]:
    """A rep's reply of files alone, as the messages it was shown as live: one per file that went
    out (``kept``: one refused, too big say, was never shown and is not now)."""
    if message.direction != "out" or message.text or not message.files:
        return [message]
    shown = []
    for index, file in enumerate(message.files):
        if kept(token := file_token(f"{message.id}#file{index}")):
            shown.append(replace(message, id=f"{message.id}#file{index}",
                                 files=(replace(file, origin=ORIGIN, ref=token),)))
    return shown


def kept_upload(store: FileStore, rules: FileRules, conversation_id: str, *, name: str, declared: str,
                data: bytes, texts: Callable[[str], str]) -> Attachment:
    """A customer's file checked and kept; the attachment its message will carry. ``texts(key)``
    words the refusal the browser shows."""
    attachment = Attachment(content_type=declared[:100], name=name[:200], size=len(data))
    try:
        rules.precheck(attachment)
        body = rules.checked(attachment, data)
    except FileRefused as exc:
        if len(data) > rules.max_bytes or (attachment.size or 0) > rules.max_bytes:
            raise PayloadTooLarge(str(exc), public=texts("ui_file_too_big").replace(
                "{max}", f"{rules.max_bytes / 1_000_000:g}")) from exc
        raise UnsupportedMediaType(str(exc), public=texts("ui_file_refused")) from exc
    token = store.keep(body, seconds=UPLOAD_SECONDS, token=f"{conversation_id}.{secrets.token_urlsafe(32)}")
    return _attachment(body, token)


def uploads(store: FileStore | None, conversation_id: str, tokens: object) -> tuple[Attachment, ...]:
    """The files a message names (``files``: the tokens its uploads returned), each one kept for
    this very conversation."""
    if tokens is None:
        return ()
    if not isinstance(tokens, list) or len(tokens) > MAX_FILES or not all(isinstance(t, str) for t in tokens):
        raise MalformedPayload("bad files", public=f"files must be a list of at most {MAX_FILES} uploads")
    found = []
    for token in dict.fromkeys(tokens):  # one file named twice is sent once
        kept = store.get(token) if store is not None and token.startswith(f"{conversation_id}.") else None
        if kept is None:
            raise MalformedPayload("unknown upload", public="a file of this message was not uploaded, or expired")
        found.append(_attachment(kept, token))
    return tuple(found)


def fetched(store: FileStore | None, attachment: Attachment) -> bytes:
    kept = store.get(attachment.ref) if store is not None else None
    if kept is None:
        raise FileRefused(attachment.name, reason="the customer's upload expired before it could be passed on")
    return kept.data


def _attachment(kept: FileBody, token: str) -> Attachment:
    return Attachment(content_type=kept.content_type, name=kept.name, size=len(kept.data), origin=ORIGIN,
                      ref=token)


def _token(reply_id: str, index: int, file: Attachment, file_token: Callable[[str], str]) -> str:
    """A file just kept carries its token; a logged one's is derived again from its send's key."""
    return file.ref if file.origin == ORIGIN else file_token(f"{reply_id}#file{index}")

