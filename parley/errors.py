"""Every error Parley raises on purpose, in one tree.

    ParleyError
    ├── ConfigError                  the YAML is missing, unreadable or invalid (file, key, reason)
    ├── ChannelError                 a webhook request we refuse
    │   ├── ChannelDisabled          404: the channel has no credentials configured
    │   ├── InvalidSignature         401: signature, secret token or timestamp wrong
    │   ├── OriginNotAllowed         403: a browser on a site not in the widget's allowed origins
    │   ├── MalformedPayload         400: body does not parse as the platform's format
    │   ├── UnsupportedMediaType     415: wrong Content-Type
    │   ├── PayloadTooLarge          413: body or text over the configured limit
    │   └── NotNow                   409: well formed, but not in this state (a file outside a handoff)
    ├── NotFound                     404: unknown conversation or resource
    ├── RateLimited                  429: too many requests (carries retry_after seconds)
    ├── Unavailable                  503: a store we need is down; the platform should retry
    ├── SchemaBehind                 the SQL schema is older than the code (or absent): a read-only
                                     command refuses to migrate it (``parley db upgrade`` does)
    ├── LostClaim                    a worker's claim on a conversation lapsed and another holds it
                                     now: it must neither commit nor send for that conversation
    └── UpstreamError                a platform or LLM API call failed (wraps the SDK's error);
        │                            ``transient`` (429, 5xx, network) and ``retry_after`` tell the
        │                            worker to wait and retry in place, not spend an attempt
        └── Undeliverable            the platform refuses to deliver to this customer (they blocked
            │                        the bot, WhatsApp's 24-hour window closed, they opted out);
            │                        ``reason`` says so in words a support rep acts on
            └── FileRefused          a file is not passed on (over the size limit, a type not
                                     allowed, a channel that carries no files): ``name`` and
                                     ``reason``; the rest of the message still goes

Third-party exceptions are wrapped at the boundary (``raise Unavailable(...) from exc``) so callers
catch ours only. ``public_message`` is the short text a client may see; ``str(exc)`` is the detail
that goes to the log and never to a client.
"""

from __future__ import annotations


class ParleyError(Exception):
    """Base class; ``status`` is the HTTP status a webhook answers with.

    ``public`` overrides the class's client-facing text when the detail is safe and useful to the
    client (for example the length limit a message broke).
    """

    status: int = 500
    public_message: str = "internal error"

    def __init__(self, detail: str = "", *, public: str | None = None) -> None:
        super().__init__(detail or self.public_message)
        if public is not None:
            self.public_message = public


class ConfigError(ParleyError):
    """Configuration is invalid; the message names the file, the key path and the reason."""


class ChannelError(ParleyError):
    status = 400
    public_message = "bad request"


class ChannelDisabled(ChannelError):
    status = 404
    public_message = "not found"


class InvalidSignature(ChannelError):
    status = 401
    public_message = "invalid request"


class OriginNotAllowed(ChannelError):
    status = 403
    public_message = "origin not allowed"


class MalformedPayload(ChannelError):
    status = 400
    public_message = "malformed payload"


class UnsupportedMediaType(ChannelError):
    status = 415
    public_message = "unsupported media type"


class PayloadTooLarge(ChannelError):
    status = 413
    public_message = "payload too large"


class NotNow(ChannelError):
    status = 409
    public_message = "not possible now"


class NotFound(ParleyError):
    status = 404
    public_message = "not found"


class RateLimited(ParleyError):
    status = 429
    public_message = "too many requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1, public: str | None = None) -> None:
        super().__init__(detail, public=public)
        self.retry_after = retry_after


class Unavailable(ParleyError):
    status = 503
    public_message = "temporarily unavailable"


class SchemaBehind(ParleyError):
    """The conversation log's schema is not the one this code reads; read-only commands never
    upgrade it (production credentials for them may well be read-only)."""

    status = 503
    public_message = "temporarily unavailable"


class LostClaim(ParleyError):
    """This worker no longer holds the conversation (it paused past the visibility timeout)."""

    status = 503
    public_message = "temporarily unavailable"


class UpstreamError(ParleyError):
    """A platform or LLM call failed.

    ``transient`` says the same call may well succeed later (HTTP 429, 5xx, a connection error or
    timeout); a permanent failure (bad token, unknown channel, rejected request) will not, and
    counts as a failed attempt at once. ``retry_after`` is the wait the platform asked for, if any.
    """

    status = 502
    public_message = "upstream error"

    def __init__(self, detail: str = "", *, transient: bool = False, retry_after: float | None = None,
                 public: str | None = None) -> None:
        super().__init__(detail, public=public)
        self.transient = transient
        self.retry_after = retry_after


class Undeliverable(UpstreamError):
    """The platform will not deliver to this customer until they do something (permanent)."""

    def __init__(self, detail: str, *, reason: str) -> None:
        super().__init__(detail, transient=False)
        self.reason = reason


class FileRefused(Undeliverable):
    """One file that will not be passed on, whatever the retry; ``files`` lists each refused, as
    "name (reason)", when one error stands for several."""

    def __init__(self, name: str, *, reason: str, files: tuple[str, ...] = ()) -> None:
        self.name = name or "a file"
        self.files = files or (f"{self.name} ({reason})",)
        super().__init__(f"file not passed on: {'; '.join(self.files)}", reason=reason)

    @classmethod
    def of(cls, refused: list[FileRefused]) -> FileRefused:
        return cls(refused[0].name, reason=refused[0].reason,
                   files=tuple(item for error in refused for item in error.files))


__all__ = [
    "ChannelDisabled",
    "ChannelError",
    "ConfigError",
    "FileRefused",
    "InvalidSignature",
    "MalformedPayload",
    "NotFound",
    "NotNow",
    "OriginNotAllowed",
    "ParleyError",
    "PayloadTooLarge",
    "RateLimited",
    "SchemaBehind",
    "UnsupportedMediaType",
    "Unavailable",
    "Undeliverable",
    "UpstreamError",
]
