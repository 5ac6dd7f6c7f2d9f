"""Files on Telegram: what a message carries (photos, documents, voice, video), and how a file the
desk passes on is sent (a photo as a photo, anything else as a document)."""

from __future__ import annotations

from telegram import Message

from parley.core.envelope import Attachment

# Media a bot can download (``getFile``), with the type Telegram does not always state.
# A document states its type when the sender's app knew it; unstated, its bytes will tell.
_FILES = {"photo": "image/jpeg", "document": "", "video": "video/mp4",
          "voice": "audio/ogg", "audio": "audio/mpeg", "animation": "video/mp4", "video_note": "video/mp4"}
# Shown inline as a photo; anything else (a PDF, a GIF, a text file) goes as a document.
PHOTO_TYPES = ("image/jpeg", "image/png")
PHOTO_LIMIT = 10_000_000  # sendPhoto's; a document may be 50 MB
# A file's whole upload or download: well within the send ledger's 120 s claim on its reply.
FILE_SECONDS = 60


def attachments(message: Message, media: tuple[str, ...], *, origin: str) -> tuple[Attachment, ...]:
    """The message's media as attachments; what is no file (a sticker, a location) keeps no handle."""
    found = []
    for kind in media:
        item = getattr(message, kind, None)
        if kind == "photo" and isinstance(item, tuple | list) and item:
            item = item[-1]  # Telegram sends each size; the last is the largest
        file_id = getattr(item, "file_id", None)
        if kind not in _FILES or not isinstance(file_id, str):
            found.append(Attachment(content_type=kind))
            continue
        size = getattr(item, "file_size", None)
        stated = getattr(item, "mime_type", None) or _FILES[kind] or "file"
        found.append(Attachment(content_type=str(stated)[:100],
                                name=str(getattr(item, "file_name", None) or "")[:200],
                                size=size if isinstance(size, int) else None, origin=origin,
                                ref=file_id[:200]))
    return tuple(found)
