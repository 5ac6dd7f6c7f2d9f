"""A Slack workspace for handoff tests: the loopback Web API and a rep who acts through signed payloads."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from flask.testing import FlaskClient
from slack_sdk.signature import SignatureVerifier

from parley.settings import Settings
from tests.conftest import make_settings
from tests.stubs.server import Call, StubServer, slack_desk_call, slack_refusal

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-fake_1234-5678-parleytest"
HANDOFF_CHANNEL = "C0HANDOFF1"


class SlackApi:
    """chat.postMessage with fresh timestamps (remembered, so tests know each thread) and users.info."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, dict[str, Any]]] = []
        self.desk_calls: list[tuple[str, dict[str, Any]]] = []  # accepted chat.update / views.*
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        # A test's failure to inject: Slack's answer to a call, or None to answer it as usual.
        self.fault: Callable[[Call], tuple[int, dict[str, Any]] | None] = lambda call: None

    def __call__(self, call: Call) -> tuple[int, dict[str, Any]]:
        if (fault := self.fault(call)) is not None:
            return fault
        if call.endpoint == "chat.postMessage":
            refused = slack_refusal(call)
            if refused is not None:
                return refused
            with self._lock:
                ts = f"{1732520300 + next(self._ts)}.000100"
                self.posted.append((ts, call.params))
            return 200, {"ok": True, "channel": call.params.get("channel"), "ts": ts,
                         "message": {"type": "message", "text": call.params.get("text"), "ts": ts}}
        desk = slack_desk_call(call)  # chat.update, views.open, views.publish
        if desk is not None:
            with self._lock:
                if desk[1].get("ok"):
                    self.desk_calls.append((call.endpoint, call.params))
            return desk
        if call.endpoint == "users.info":
            return 200, {"ok": True, "user": {"id": call.params.get("user"), "name": "bo",
                                              "profile": {"display_name": "Bo", "real_name": "Bo Berg"}}}
        return 200, {"ok": False, "error": "unknown_method"}


def handoff_settings(tmp_path: Path, slack: StubServer, **environ: str) -> Settings:
    """Slack with a handoff channel; business hours off so the outcome does not depend on the clock."""
    settings = make_settings(tmp_path, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                             SLACK_API_URL=slack.url + "/api/", SLACK_HANDOFF_CHANNEL=HANDOFF_CHANNEL,
                             **environ)
    always_open = settings.handoff.model_copy(update={"business_hours": None})
    return settings.model_copy(update={"handoff": always_open})


def signed(body: bytes, secret: str = SIGNING_SECRET) -> dict[str, str]:
    stamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)}


def wait_until(check, timeout: float = 10.0):  # noqa: ANN001, ANN201 - a predicate returning a value
    """The predicate's first truthy value, polling until ``timeout``; None when it never came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    return None


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message["blocks"]
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def header_state(message: dict[str, Any]) -> str:
    """The state line a rep reads under a thread's header."""
    [state] = [b for b in _blocks(message) if b.get("block_id") == "parley_state"]
    return state["elements"][0]["text"]


def header_buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    """The header's buttons (action id, label): those that still make sense."""
    actions = [b for b in _blocks(message) if b.get("block_id") == "parley_handoff"]
    return [(b["action_id"], b["text"]["text"]) for block in actions for b in block["elements"]]


def header_answers(message: dict[str, Any]) -> list[tuple[str, str]]:
    """The bot's answers shown on the header (their text, their "Wrong answer?" button's value)."""
    return [(b["text"]["text"], b["accessory"]["value"]) for b in _blocks(message)
            if b.get("block_id", "").startswith("parley_answer_")]


class Desk:
    """The reps' side: what Parley posted in the handoff channel, and a rep acting in Slack."""

    def __init__(self, client: FlaskClient, api: SlackApi) -> None:
        self.client, self.api = client, api
        self._ids = itertools.count(1)

    def headers(self) -> list[tuple[str, dict[str, Any]]]:
        return [(ts, p) for ts, p in self.api.posted if p.get("channel") == HANDOFF_CHANNEL and "blocks" in p]

    def wait_for_thread(self, count: int = 1) -> str:
        found = wait_until(lambda: len(self.headers()) >= count and self.headers())
        assert found, f"no thread was opened in the handoff channel; posted: {self.api.posted}"
        thread = found[count - 1][0]
        # Known to Parley a moment after Slack answered the post (a rep is never that quick).
        directory = self.client.application.extensions["parley"].adapters["desk"].directory
        assert wait_until(lambda: directory.conversation_of(HANDOFF_CHANNEL, thread))
        return thread

    def updates(self, ts: str) -> list[dict[str, Any]]:
        """The header of thread ``ts`` as each ``chat.update`` left it, oldest first."""
        return [p for endpoint, p in self.api.desk_calls if endpoint == "chat.update" and p.get("ts") == ts]

    def wait_for_update(self, ts: str, needle: str) -> dict[str, Any]:
        """The first update of the thread's header whose state line says ``needle``."""
        found = wait_until(lambda: next((p for p in self.updates(ts) if needle in header_state(p)), None))
        assert found, f"the header never said {needle!r}; updates: {[header_state(p) for p in self.updates(ts)]}"
        return found

    def thread(self, ts: str) -> list[str]:
        return [p["text"] for _, p in self.api.posted if p.get("thread_ts") == ts]

    def wait_in_thread(self, ts: str, needle: str) -> list[str]:
        found = wait_until(lambda: any(needle in text for text in self.thread(ts)) and self.thread(ts))
        assert found, f"{needle!r} never reached the thread; it has: {self.thread(ts)}"
        return found

    def reply(self, thread: str, text: str, *, payload: str = "handoff_thread_reply.json") -> int:
        body = json.loads((PAYLOADS / "slack" / payload).read_text())
        n = next(self._ids)
        body["event_id"] = f"Ev0REPLY{n:04d}"
        event = body["event"]
        event.update(text=text, thread_ts=thread, ts=f"1732529{n:03d}.000300")
        return self._post("/slack/events", json.dumps(body).encode(), "application/json")

    def event(self, payload: str, thread: str) -> int:
        body = json.loads((PAYLOADS / "slack" / payload).read_text())
        body["event"]["thread_ts"] = thread
        if "message" in body["event"]:
            body["event"]["message"]["thread_ts"] = thread
        return self._post("/slack/events", json.dumps(body).encode(), "application/json")

    def click(self, thread: str, action: str, *, conversation_id: str = "") -> int:
        payload = json.loads((PAYLOADS / "slack" / "handoff_block_actions.json").read_text())
        payload["container"]["message_ts"] = payload["message"]["ts"] = thread
        [button] = payload["actions"]
        button.update(action_id=f"parley_{action}", value=conversation_id,
                      action_ts=f"1732530{next(self._ids):03d}.1")
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return self._post("/slack/interactions", body, "application/x-www-form-urlencoded")

    def command(self, text: str) -> dict[str, Any]:
        fields = dict(parse_qsl((PAYLOADS / "slack" / "slash_command.txt").read_text().strip()))
        fields["text"] = text
        body = urlencode(fields).encode()
        response = self.client.post("/slack/commands", data=body,
                                    content_type="application/x-www-form-urlencoded", headers=signed(body))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def _post(self, path: str, body: bytes, content_type: str) -> int:
        return self.client.post(path, data=body, content_type=content_type, headers=signed(body)).status_code
