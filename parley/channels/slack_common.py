"""What the customers' Slack adapter and the reps' desk share: the signature check, the Web API
client, our error for its failures, and telling a bot's post (our own echo included) from a person's."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from flask import Request
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier

from parley.errors import InvalidSignature, MalformedPayload, UpstreamError

MAX_AGE_SECONDS = 5 * 60  # Slack's documented replay window


def verify_signature(verifier: SignatureVerifier, request: Request, *, clock: Callable[[], float]) -> None:
    """Slack's signing secret check, with its five-minute replay window."""
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        raise InvalidSignature("missing X-Slack-Signature or X-Slack-Request-Timestamp")
    if not timestamp.isdigit() or abs(clock() - int(timestamp)) > MAX_AGE_SECONDS:
        raise InvalidSignature(f"stale or bad timestamp {timestamp[:20]!r} (replay?)")
    try:
        valid = verifier.is_valid(body=request.get_data(), timestamp=timestamp, signature=signature)
    except UnicodeDecodeError:  # the SDK decodes the body as UTF-8 first; Slack only sends UTF-8
        valid = False
    if not valid:
        raise InvalidSignature("Slack signature does not match the signing secret")


def web_client(token: str, api_url: str, *, timeout: float = 10.0) -> WebClient:
    """The Web API client for posting: no retry handlers, because a post retried after a lost
    response would show twice. A 429 or 5xx raises a transient UpstreamError instead, and the
    worker waits and retries through the send ledger."""
    # WebClient joins base_url and the method name by plain concatenation.
    base_url = api_url if api_url.endswith("/") else api_url + "/"
    return WebClient(token=token, base_url=base_url, timeout=int(timeout), retry_handlers=[])


def from_a_bot(event: dict[str, Any], body: dict[str, Any]) -> bool:
    """A bot's post, ours included: Slack sends the bot's own messages back as events."""
    if event.get("bot_id") or not event.get("user"):
        return True
    authorizations = body.get("authorizations")
    bot_users = {a.get("user_id") for a in authorizations if isinstance(a, dict)} \
        if isinstance(authorizations, list) else set()
    return event.get("user") in bot_users


def slack_failure(exc: SlackClientError | OSError, call: str) -> UpstreamError:
    """Our error for a failed Web API call: transient on 429 (with its Retry-After), 5xx, network.

    Anything else (``invalid_auth``, ``channel_not_found``, a bad argument) fails the same way
    every time, so it is permanent.
    """
    if isinstance(exc, SlackApiError):
        status = int(getattr(exc.response, "status_code", 0) or 0)
        retry_after = _retry_after(getattr(exc.response, "headers", None)) if status == 429 else None
        data = getattr(exc.response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        return UpstreamError(f"{call} failed: HTTP {status} {error or exc}",
                             transient=status == 429 or status >= 500, retry_after=retry_after)
    return UpstreamError(f"{call} failed: {exc}", transient=isinstance(exc, OSError))


def _retry_after(headers: object) -> float | None:
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None) \
        if isinstance(headers, dict) else None
    value = value[0] if isinstance(value, list) and value else value
    try:
        seconds = float(str(value))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def interaction_payload(request: Request) -> dict[str, Any]:
    """An interaction's ``payload`` form field as a JSON object (a button, a modal, a shortcut)."""
    try:
        value = json.loads(request.form.get("payload", ""))
    except (ValueError, RecursionError):  # RecursionError: "[[[[…" nested past Python's limit
        value = None
    if not isinstance(value, dict):
        raise MalformedPayload("form field 'payload' is not a JSON object")
    return value


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
