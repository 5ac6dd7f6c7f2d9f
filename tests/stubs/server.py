"""A tiny recording HTTP server, and the Slack, Twilio and Telegram APIs built on it.

The official clients talk to these over real HTTP; tests then read ``calls`` to see exactly what a
customer would have received. ``wait_for`` polls with a deadline, because answers come from the
app's worker threads after the webhook was acknowledged.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from tests.stubs import slack_rules, telegram_rules


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    params: dict[str, Any]  # JSON body, or form fields (first value of each)
    headers: dict[str, str]
    received: float = 0.0  # time.perf_counter() on arrival, for benches
    body: bytes = b""  # the raw body (a file's upload), but for multipart
    files: tuple[tuple[str, str, bytes], ...] = ()  # multipart parts: (field, filename, bytes)

    @property
    def endpoint(self) -> str:
        return self.path.rsplit("/", 1)[-1]


# (status, JSON body) or (status, JSON body, headers), e.g. a 429 with its Retry-After; a body of
# bytes goes as it is (a file's download).
Answer = Callable[[Call], tuple[int, Any] | tuple[int, Any, dict[str, str]]]


class _Quiet(WSGIRequestHandler):
    """No access log: the stub is the platform's side, and its lines would pass for the product's."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class StubServer:
    def __init__(self, answer: Answer) -> None:
        self.calls: list[Call] = []
        self._answer = answer
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        params: dict[str, Any] = {key: request.args[key] for key in request.args}  # slack_sdk's params=
        # Kept raw as well: urllib labels any body it POSTs (slack_sdk's file upload) as a form.
        raw = b"" if request.mimetype == "multipart/form-data" else request.get_data(cache=True)
        if request.mimetype == "application/json":
            params.update(request.get_json(silent=True) or {})
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            params.update({key: request.form[key] for key in request.form})
        files = tuple((field, part.filename or "", part.read())
                      for field, part in request.files.items(multi=True))
        call = Call(request.method, request.path, params, dict(request.headers), time.perf_counter(),
                    body=raw, files=files)
        with self._lock:
            self.calls.append(call)
        status, body, *headers = self._answer(call)
        if isinstance(body, bytes):
            return Response(body, status=status, headers=headers[0] if headers else None,
                            mimetype="application/octet-stream")(environ, start_response)
        return Response(json.dumps(body), status=status, headers=headers[0] if headers else None,
                        mimetype="application/json")(environ, start_response)

    def to(self, endpoint: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.endpoint == endpoint]

    def wait_for(self, endpoint: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """At least ``count`` calls to ``endpoint``, waiting up to ``timeout`` for them."""
        deadline = time.monotonic() + timeout
        while len(self.to(endpoint)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.to(endpoint)

    def settle(self, endpoint: str, quiet: float = 0.5, timeout: float = 15.0,
               at_least: int = 0) -> list[Call]:
        """Calls to ``endpoint`` once ``at_least`` arrived and then none for ``quiet`` seconds.

        ``at_least`` keeps a slow first answer (a loaded CI machine) from passing for "no answer";
        the quiet period then proves a second never comes.
        """
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            now = len(self.to(endpoint))
            if now != seen:
                seen, since = now, time.monotonic()
            elif now >= at_least and time.monotonic() - since >= quiet:
                break
            time.sleep(0.02)
        return self.to(endpoint)


@contextmanager
def serving(answer: Answer) -> Iterator[StubServer]:
    server = StubServer(answer)
    server._thread.start()
    try:
        yield server
    finally:
        server._server.shutdown()


def slack_refusal(call: Call) -> tuple[int, dict[str, Any]] | None:
    """Slack's answer to a chat.postMessage it refuses (``slack_rules``): 200, ok false; else None."""
    try:
        slack_rules.check_text(call.params.get("text"), has_blocks=bool(call.params.get("blocks")))
        if "blocks" in call.params:
            slack_rules.check_blocks(_json_field(call.params["blocks"]))
    except slack_rules.Refused as refused:
        return 200, {"ok": False, "error": str(refused)}
    return None


def slack_desk_call(call: Call) -> tuple[int, dict[str, Any]] | None:
    """chat.update, views.open and views.publish as Slack answers them (refusing what it refuses);
    None for any other method."""
    if call.endpoint == "chat.update":
        refused = slack_refusal(call)
        if refused is not None:
            return refused
        if not call.params.get("ts") or not call.params.get("channel"):
            return 200, {"ok": False, "error": "message_not_found"}
        return 200, {"ok": True, "channel": call.params["channel"], "ts": call.params["ts"],
                     "text": call.params.get("text")}
    if call.endpoint in ("views.open", "views.publish"):
        view = _json_field(call.params.get("view"))
        if call.endpoint == "views.open" and not call.params.get("trigger_id"):
            return 200, {"ok": False, "error": "invalid_trigger_id"}
        if call.endpoint == "views.publish" and not call.params.get("user_id"):
            return 200, {"ok": False, "error": "invalid_arguments"}
        try:
            slack_rules.check_view(view)
        except slack_rules.Refused as refused:
            return 200, {"ok": False, "error": str(refused)}
        return 200, {"ok": True, "view": {"id": "V0PARLEY01", **view}}
    return None


def slack_api(call: Call) -> tuple[int, dict[str, Any]]:
    """chat.postMessage (and the desk's methods), refusing what Slack refuses as Slack does."""
    desk = slack_desk_call(call)
    if desk is not None:
        return desk
    if call.endpoint == "chat.postMessage":
        refused = slack_refusal(call)
        if refused is not None:
            return refused
        return 200, {"ok": True, "channel": call.params.get("channel"), "ts": f"{time.time():.6f}",
                     "message": {"type": "message", "text": call.params.get("text")}}
    return 200, {"ok": False, "error": "unknown_method"}


# Twilio's refusal when a WhatsApp conversation's 24-hour customer-service window has closed.
WHATSAPP_WINDOW_CLOSED = (400, {
    "code": 63016, "status": 400, "more_info": "https://www.twilio.com/docs/errors/63016",
    "message": "Failed to send freeform message because you are outside the allowed window. "
               "If you are using WhatsApp, please use a Message Template."})


def _json_field(value: Any) -> Any:
    """A JSON body's list, or a form field's JSON text (slack_sdk sends either)."""
    return json.loads(value) if isinstance(value, str) else value


def twilio_api(refuse: Callable[[Call], tuple[int, dict[str, Any]] | None] = lambda call: None) -> Answer:
    """Messages.json; ``refuse(call)`` may answer a create with one of Twilio's errors instead."""
    sids = itertools.count(1)

    def answer(call: Call) -> tuple[int, dict[str, Any]]:
        refusal = refuse(call) if call.endpoint == "Messages.json" else None
        if refusal is not None:
            return refusal
        if call.endpoint == "Messages.json" and call.method == "POST":
            if not call.params.get("Body") and not call.params.get("MediaUrl"):
                return 400, {"code": 21619, "status": 400, "message": "A text message body or media urls must "
                             "be specified.", "more_info": "https://www.twilio.com/docs/errors/21619"}
            account = call.path.split("/")[3]
            return 201, {"sid": f"SM{next(sids):032d}", "account_sid": account, "status": "queued",
                         "to": call.params.get("To"), "from": call.params.get("From"),
                         "body": call.params.get("Body"), "num_segments": "1", "direction": "outbound-api"}
        return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
    return answer


BLOCKED_BY_USER = (403, {"ok": False, "error_code": 403,
                         "description": "Forbidden: bot was blocked by the user"})


def telegram_api(blocked: Callable[[], bool] = lambda: False) -> Answer:
    """The Bot API, refusing a ``sendMessage`` Telegram would refuse (``telegram_rules``) with its 400,
    and with its 403 while ``blocked()`` (the customer blocked the bot)."""
    ids = itertools.count(1)

    def answer(call: Call) -> tuple[int, dict[str, Any]]:
        if call.endpoint == "sendMessage":
            if blocked():
                return BLOCKED_BY_USER
            try:
                telegram_rules.check_message(str(call.params.get("text", "")), call.params.get("parse_mode"))
                keyboard = telegram_rules.check_keyboard(call.params.get("reply_markup"))
            except telegram_rules.Refused as refused:
                return 400, {"ok": False, "error_code": 400, "description": str(refused)}
            chat = {"id": int(call.params["chat_id"]), "type": "private"}
            message = {"message_id": next(ids), "date": int(time.time()), "chat": chat,
                       "text": call.params.get("text", ""), **({"reply_markup": keyboard} if keyboard else {})}
            return 200, {"ok": True, "result": message}
        if call.endpoint == "answerCallbackQuery":
            try:
                telegram_rules.check_callback_answer(call.params.get("text"))
            except telegram_rules.Refused as refused:
                return 400, {"ok": False, "error_code": 400, "description": str(refused)}
            return 200, {"ok": True, "result": True}
        if call.endpoint in {"sendChatAction", "setWebhook"}:
            return 200, {"ok": True, "result": True}
        if call.endpoint == "getMe":
            return 200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "Parley",
                                                "username": "parley_bot"}}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
    return answer
