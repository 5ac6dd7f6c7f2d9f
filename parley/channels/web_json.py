"""The widget's JSON: a reply as the message request answers it, a message as the history and the
live event stream show it (the same shape), and a mailbox event as Server-Sent Events."""

from __future__ import annotations

import json
from collections.abc import Callable

from parley.channels.web_files import FileToken, files_json, one_per_file
from parley.core.envelope import Reply
from parley.core.log import LoggedMessage
from parley.core.mailbox import MailboxEvent


def reply_json(reply: Reply) -> dict[str, object]:
    return {
        "id": reply.reply_id,
        "text": reply.text,
        "quick_replies": list(reply.quick_replies),
        "sources": [s.to_dict() for s in reply.meta.sources],
        "confidence": reply.meta.confidence,
        "engine": reply.meta.engine,
        "author": reply.author,
    }


def history_message(message: LoggedMessage, file_token: FileToken = None) -> dict[str, object]:
    """One message as the browser's history shows it (``author`` set for a support rep); its files
    by the addresses they were kept under (``channels.web_files``)."""
    return {"id": message.id, "direction": message.direction, "text": message.text,
            "author": message.author, "sources": [s.to_dict() for s in message.sources],
            "quick_replies": list(message.quick_replies), "created_at": message.created_at,
            "files": files_json(message, file_token)}


def history_messages(message: LoggedMessage, file_token: Callable[[str], str],
                     kept: Callable[[str], bool]) -> list[dict[str, object]]:
    """As ``history_message``; a rep's reply of files alone is one message per file, as it came live
    (``WidgetAdapter.send_file``), so a browser that saw it live does not show it twice."""
    return [history_message(shown, file_token) for shown in one_per_file(message, file_token, kept)]


def reply_message(reply: Reply, created_at: float, file_token: FileToken = None) -> dict[str, object]:
    """A reply that was just sent, in the same shape as the history."""
    return history_message(LoggedMessage(id=reply.reply_id, direction="out", text=reply.text,
                                         created_at=created_at, sources=reply.meta.sources,
                                         author=reply.author, quick_replies=reply.quick_replies,
                                         files=reply.files), file_token)


def to_sse(event: MailboxEvent, now: float, file_token: FileToken = None) -> str:
    """A mailbox event as Server-Sent Events; the id is the mailbox cursor, for Last-Event-ID."""
    if event.kind == "replies":
        payloads = [{"type": "message", "message": reply_message(r, now, file_token)} for r in event.replies]
    elif event.kind == "token":
        payloads = [{"type": "token", "reply_id": event.reply_id, "text": event.text}]
    else:
        payloads = [{"type": "typing"}]
    return "".join(f"id: {event.cursor}\ndata: {json.dumps(p, separators=(',', ':'))}\n\n"
                   for p in payloads)
