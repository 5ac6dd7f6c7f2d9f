"""The platforms' file endpoints, as each documents them, on the recording stubs.

- Slack: a file is downloaded from its ``url_private_download`` with the bot token (Bearer); an
  upload is ``files.getUploadURLExternal`` (filename, length) -> POST of the bytes to the URL it
  gave -> ``files.completeUploadExternal`` (files, channel_id, thread_ts), which Slack refuses when
  the bytes uploaded are not the length declared.
- Telegram: ``getFile`` (file_path, file_size) -> GET ``/file/bot<token>/<file_path>``; a bot's
  ``sendPhoto`` (<= 10 MB) and ``sendDocument`` (<= 50 MB) are multipart, their caption <= 1,024
  characters.
- Twilio: a media URL answers with the account's credentials (Basic) by redirecting to its CDN,
  which needs none.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

from tests.stubs.server import Call

CAPTION_LIMIT = 1024
PHOTO_LIMIT = 10_000_000
DOCUMENT_LIMIT = 50_000_000


class SlackFiles:
    """Files a workspace keeps (path -> bytes), and the uploads Parley made, completed."""

    def __init__(self, token: str, hosted: Mapping[str, bytes] | None = None) -> None:
        self.token = token
        self.hosted = dict(hosted or {})
        self.downloads: list[Call] = []
        self.uploaded: list[dict[str, Any]] = []  # {channel_id, thread_ts, title, comment, data}
        self._pending: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self, call: Call) -> tuple[int, Any] | None:
        """Slack's answer to a file call; None for any other call."""
        if call.path.startswith("/files-pri/"):
            self.downloads.append(call)
            if call.headers.get("Authorization") != f"Bearer {self.token}":
                return 200, b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>"  # as Slack does
            return (200, self.hosted[call.path]) if call.path in self.hosted else (404, b"not found")
        if call.endpoint == "files.getUploadURLExternal":
            length = str(call.params.get("length", ""))
            if not call.params.get("filename") or not length.isdigit() or int(length) < 1:
                return 200, {"ok": False, "error": "invalid_arguments"}
            file_id = f"F0UP{next(self._ids):06d}"
            with self._lock:
                self._pending[file_id] = {"filename": call.params["filename"], "length": int(length)}
            return 200, {"ok": True, "file_id": file_id,
                         "upload_url": f"http://{call.headers['Host']}/upload/v1/{file_id}"}
        if call.path.startswith("/upload/v1/"):
            with self._lock:
                pending = self._pending.get(call.path.rsplit("/", 1)[-1])
            if pending is None:
                return 404, b"unknown upload"
            pending["data"] = call.body
            return 200, b"OK - " + str(len(call.body)).encode()
        if call.endpoint == "files.completeUploadExternal":
            return self._complete(call)
        return None

    def _complete(self, call: Call) -> tuple[int, Any]:
        files = call.params.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        done = []
        with self._lock:
            for item in files or []:
                pending = self._pending.pop(item.get("id"), None)
                if pending is None or len(pending.get("data", b"")) != pending["length"]:
                    return 200, {"ok": False, "error": "upload_incomplete"}
                self.uploaded.append({"channel_id": call.params.get("channel_id"),
                                      "thread_ts": call.params.get("thread_ts"), "title": item.get("title"),
                                      "filename": pending["filename"], "data": pending["data"],
                                      "comment": call.params.get("initial_comment")})
                done.append({"id": item["id"], "title": item.get("title"), "name": pending["filename"]})
        return 200, {"ok": True, "files": done}


class TelegramFiles:
    """Files Telegram keeps for the bot (file id -> bytes), and the photos and documents it sent."""

    def __init__(self, token: str, hosted: Mapping[str, bytes] | None = None) -> None:
        self.token = token
        self.hosted = dict(hosted or {})
        self.downloads: list[Call] = []
        self.sent: list[tuple[str, Call]] = []  # (method, call)
        self.failures = 0  # the next sends that fail as a Bot API outage does (502)

    def __call__(self, call: Call) -> tuple[int, Any] | None:
        if call.endpoint == "getFile":
            data = self.hosted.get(str(call.params.get("file_id")))
            if data is None:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
            return 200, {"ok": True, "result": {"file_id": call.params["file_id"], "file_unique_id": "AQADu",
                                                "file_size": len(data), "file_path": f"photos/{call.params['file_id']}.jpg"}}
        if call.path.startswith(f"/file/bot{self.token}/photos/"):
            self.downloads.append(call)
            data = self.hosted.get(call.path.rsplit("/", 1)[-1].removesuffix(".jpg"))
            return (200, data) if data is not None else (404, b"")
        if call.endpoint in ("sendPhoto", "sendDocument"):
            return self._send(call)
        return None

    def _send(self, call: Call) -> tuple[int, Any]:
        if self.failures > 0:
            self.failures -= 1
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        field = "photo" if call.endpoint == "sendPhoto" else "document"
        parts = [data for name, _, data in call.files if name == field]
        limit = PHOTO_LIMIT if field == "photo" else DOCUMENT_LIMIT
        caption = str(call.params.get("caption") or "")
        if len(parts) != 1 or not parts[0] or len(parts[0]) > limit or len(caption) > CAPTION_LIMIT:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: wrong {field}"}
        self.sent.append((call.endpoint, call))
        chat = {"id": int(call.params["chat_id"]), "type": "private"}
        return 200, {"ok": True, "result": {"message_id": len(self.sent), "date": int(time.time()), "chat": chat,
                                            field: ({"file_id": "sent", "file_unique_id": "u"} if field == "document"
                                                    else [{"file_id": "sent", "file_unique_id": "u",
                                                           "width": 1, "height": 1}])}}


class TwilioMedia:
    """Media of the account's messages (path -> bytes): Basic auth, then a redirect to the CDN host."""

    def __init__(self, account_sid: str, auth_token: str, *, cdn_host: str,
                 hosted: Mapping[str, bytes] | None = None) -> None:
        self.credentials = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self.cdn_host = cdn_host  # another name of the stub, so the redirect changes host
        self.hosted = dict(hosted or {})
        self.media_calls: list[Call] = []
        self.cdn_calls: list[Call] = []

    def __call__(self, call: Call) -> tuple[int, Any, dict[str, str]] | tuple[int, Any] | None:
        if call.path.startswith("/cdn/"):
            self.cdn_calls.append(call)
            data = self.hosted.get(call.path.removeprefix("/cdn"))
            return (200, data) if data is not None else (404, b"")
        if "/Media/" in call.path:
            self.media_calls.append(call)
            if call.headers.get("Authorization") != self.credentials:
                return 401, {"code": 20003, "message": "Authenticate", "status": 401}
            return 307, b"", {"Location": f"http://{self.cdn_host}/cdn{call.path}"}
        return None
