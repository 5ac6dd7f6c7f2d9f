"""A file's bytes as they pass between channels, and where files are kept for a platform to fetch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


# What passes between a customer and the reps' thread unless ``handoff.files.types`` says otherwise.
DEFAULT_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain")


@dataclass(frozen=True, slots=True)
class FileBody:
    """A file's bytes, with the name and the type its content was found to have."""

    name: str
    content_type: str
    data: bytes


class FileStore(Protocol):
    """Files kept for a platform that fetches them from a URL of ours (Twilio's media)."""

    def keep(self, file: FileBody, *, seconds: int, token: str | None = None) -> str:
        """Keep the file for ``seconds``; the token it is fetched by (``token``, else a random one)."""
        ...

    def get(self, token: str) -> FileBody | None:
        """The kept file; None when unknown or expired."""
        ...

    def has(self, token: str) -> bool:
        """Whether the file is kept (without reading it)."""
        ...
