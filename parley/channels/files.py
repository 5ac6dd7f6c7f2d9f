"""Files passed on during a handoff: fetched from the channel they came by, checked, sent on.

A customer's photo reaches the reps' thread and a rep's file reaches the customer: the worker asks
the file's origin adapter (``FileSource``) for its bytes and the destination adapter
(``FileSender``) to send them. Between the two, ``FileRules`` holds each file to the admin's limits
(``handoff.files``): its declared size and type first, so nothing too big or of the wrong kind is
downloaded, then the bytes themselves, whose type is read from their content (``puremagic``),
never taken on the platform's or the sender's word.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import puremagic
import requests

from parley.core.envelope import Attachment, Reply
from parley.core.files import DEFAULT_TYPES, FileBody
from parley.errors import FileRefused, UpstreamError

_BLOCK = 64 * 1024
DOWNLOAD_SECONDS = 60  # a file's whole download; the send ledger holds a reply's claim for 120 s
# Never passed on by a wildcard ("image/*"): an SVG is a document that can carry script.
_ONLY_BY_NAME = ("image/svg+xml",)
# Types whose content carries no signature to read: accepted when the bytes are text.
_TEXT_TYPES = ("text/plain", "text/csv")
_TEXT_EXTENSIONS = {"text/plain": [".txt", ".text", ".log", ".md"], "text/csv": [".csv"]}


@runtime_checkable
class FileSource(Protocol):
    """An adapter that can fetch the files its channel brought in (``Attachment.origin``)."""

    def fetch_file(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        """The file's bytes; ``FileRefused`` past ``max_bytes``, ``UpstreamError`` on failure."""
        ...


@runtime_checkable
class FileSender(Protocol):
    """An adapter whose channel carries files to whom ``reply`` goes (its route, or the desk's thread)."""

    def send_file(self, reply: Reply, file: FileBody, *, key: str) -> None:
        """Send the file; ``UpstreamError`` (or ``Undeliverable``) when the platform fails or refuses.
        ``key`` names this file of this reply, the same on every retry ("<reply id>#file<n>")."""
        ...


@dataclass(frozen=True, slots=True)
class FileRules:
    max_bytes: int = 10_000_000
    types: tuple[str, ...] = DEFAULT_TYPES

    def allows(self, content_type: str) -> bool:
        base = content_type.split(";", 1)[0].strip().lower()
        if base in _ONLY_BY_NAME:
            return base in self.types
        return any(fnmatch.fnmatchcase(base, allowed) for allowed in self.types)

    def precheck(self, attachment: Attachment) -> None:
        """Refuse what the platform's own description already rules out, before any download."""
        if attachment.size is not None and attachment.size > self.max_bytes:
            raise FileRefused(attachment.name, reason=f"over the {_megabytes(self.max_bytes)} limit")
        declared = attachment.content_type
        if "/" in declared and not self.allows(declared):
            raise FileRefused(attachment.name, reason=f"{declared} files are not passed on")

    def checked(self, attachment: Attachment, data: bytes) -> FileBody:
        """The file as it will be sent, once its bytes are within the size and of an allowed type."""
        if len(data) > self.max_bytes:
            raise FileRefused(attachment.name, reason=f"over the {_megabytes(self.max_bytes)} limit")
        found = content_type_of(data)
        declared = attachment.content_type.split(";", 1)[0].strip().lower()
        if found == _TEXT_TYPES[0] and declared in _TEXT_TYPES:
            found = declared  # text shows no signature: a CSV is a CSV when its bytes are text
        if found is None or not self.allows(found):
            raise FileRefused(attachment.name, reason=f"its content is {found or 'of no known type'}, "
                                                      "which is not passed on")
        return FileBody(name=named_for(attachment.name, found), content_type=found, data=data)


def content_type_of(data: bytes) -> str | None:
    """The media type the bytes themselves show; plain text when they are UTF-8 text; else None."""
    try:
        found = puremagic.from_string(data, mime=True)
    except (puremagic.PureError, ValueError):
        found = ""
    if found:
        return str(found)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return _TEXT_TYPES[0] if text and "\x00" not in text else None


def fetch_and_check(rules: FileRules, source: FileSource, attachment: Attachment) -> FileBody:
    rules.precheck(attachment)
    return rules.checked(attachment, source.fetch_file(attachment, max_bytes=rules.max_bytes))


def origin_of(url: str) -> str:
    """"https://files.slack.com" of a URL: its scheme and host, what a download is allowed by."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


def download(url: str, *, session: requests.Session, max_bytes: int, name: str, timeout: float,
             allowed: Collection[str], what: str, headers: Mapping[str, str] | None = None,
             auth: tuple[str, str] | None = None) -> bytes:
    """GET ``url``'s body, at most ``max_bytes`` of it, from one of the ``allowed`` origins only.

    The platform's credentials go with the request, so a URL anywhere else (a forged or mistaken
    event, or the platform's host over plain http) is never asked; redirects leave them behind
    (``requests`` drops the ``Authorization`` header when the host changes, as Twilio's media
    redirect to its CDN needs).
    """
    if origin_of(url) not in allowed:
        where = urlsplit(url).hostname or url[:40]
        raise FileRefused(name, reason=f"{what} named a file on a host Parley does not fetch from ({where})")
    try:
        with session.get(url, stream=True, timeout=timeout, headers=headers, auth=auth) as response:
            status = response.status_code
            if status == 429 or status >= 500:
                raise UpstreamError(f"{what} file download: HTTP {status}", transient=True)
            if status >= 400:  # deleted, or no longer ours to read: no retry brings it back
                raise FileRefused(name, reason=f"{what} would not hand it over (HTTP {status})")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FileRefused(name, reason=f"over the {_megabytes(max_bytes)} limit")
            data, deadline = bytearray(), time.monotonic() + DOWNLOAD_SECONDS
            for block in response.iter_content(_BLOCK):
                data += block
                if len(data) > max_bytes:
                    raise FileRefused(name, reason=f"over the {_megabytes(max_bytes)} limit")
                if time.monotonic() > deadline:  # well within the send ledger's claim on the reply
                    raise UpstreamError(f"{what} file download took over {DOWNLOAD_SECONDS} s",
                                        transient=True)
            return bytes(data)
    except requests.RequestException as exc:
        raise UpstreamError(f"{what} file download failed: {type(exc).__name__}", transient=True) from exc


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def named_for(name: str, content_type: str) -> str:
    """The name, ending as its content is: "run.bat" whose bytes are text goes as "run.txt", so no
    one opens a script, or a program, by a name that says it is something else."""
    # Python's table gives text/plain ".bat", ".c", ".pl"...: text keeps only the names of text.
    extensions = _TEXT_EXTENSIONS.get(content_type) or mimetypes.guess_all_extensions(content_type)
    stem, dot, extension = name.rpartition(".")
    if dot and f".{extension.lower()}" in extensions:
        return name
    preferred = ".jpg" if content_type == "image/jpeg" else (extensions or [""])[0]
    return f"{(stem if dot else name) or 'file'}{preferred}"
