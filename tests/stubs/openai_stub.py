"""A loopback server speaking OpenAI Chat Completions, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` as plain JSON or, when the request says ``stream``, as
Server-Sent Events chunks (text, tool calls, a final usage chunk, ``[DONE]``), over HTTP/1.1
keep-alive. Tests queue scripted outcomes (a tool call, 429 with Retry-After, 500, a slow answer for
timeouts); with none queued it answers from the request itself: it names the first knowledge-base
passage it was sent and cites it, or echoes the customer's words when ``echo`` is on. Every request
body is recorded.

Run alone for benchmarks: ``python -m tests.stubs.openai_stub --port 8900 --latency 0.8``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One scripted response: a status (with headers), a text, a tool call, and/or a delay."""

    status: int = 200
    text: str | None = None
    tool_call: tuple[str, dict[str, Any]] | None = None
    delay: float = 0.0
    stall: float = 0.0  # a stream pauses this long after its first piece of text
    headers: tuple[tuple[str, str], ...] = ()
    # Some OpenAI-compatible servers ignore ``stream: true`` and answer with one JSON body.
    ignores_stream: bool = False


def rate_limited(retry_after: str = "1") -> Outcome:
    return Outcome(status=429, headers=(("Retry-After", retry_after),))


def server_error() -> Outcome:
    return Outcome(status=500)


def slow(seconds: float) -> Outcome:
    return Outcome(delay=seconds)


def stalled_stream(seconds: float) -> Outcome:
    return Outcome(stall=seconds)


def handoff(reason: str) -> Outcome:
    return Outcome(tool_call=("handoff_to_person", {"reason": reason}))


class OpenAIStub:
    def __init__(self, *, latency: float = 0.0, echo: bool = False, first_token_share: float = 0.4,
                 port: int = 0, slow_word: str | None = None, slow_seconds: float = 0.0) -> None:
        self.latency = latency
        # Benchmarks: a question containing ``slow_word`` waits ``slow_seconds`` before its answer.
        self.slow_word = slow_word
        self.slow_seconds = slow_seconds
        self.echo = echo
        self.first_token_share = first_token_share
        self.requests: list[dict[str, Any]] = []
        self.script: deque[Outcome] = deque()
        # What the client's connection pools did: the ports requests came from, the most at once.
        self.peer_ports: set[int] = set()
        self.peak_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.stub = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="openai-stub")

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, *outcomes: Outcome) -> None:
        with self._lock:
            self.script.extend(outcomes)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    @contextmanager
    def serving(self, peer: tuple[str, int]) -> Iterator[None]:
        with self._lock:
            self.peer_ports.add(peer[1])
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _next(self, body: dict[str, Any]) -> Outcome:
        with self._lock:
            self.requests.append(body)
            if self.script:
                return self.script.popleft()
        if self.slow_word and self.slow_word in _question(body):
            return Outcome(delay=self.slow_seconds)
        return Outcome()

    def answer_text(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        question = _question(body)
        if self.echo:
            return f"You said: {question}"
        passages = next((m["content"] for m in messages if m.get("role") == "system"
                         and m["content"].startswith("Knowledge-base passages")), "")
        title = re.search(r"^\[1\] (.+)$", passages, re.MULTILINE)
        if title is None:
            return "I don't know that one, sorry. Would you like me to connect you with a person?"
        return (f"Here is what our help centre says about \"{title.group(1)}\": follow the steps in "
                f"that article and you should be all set [1].")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # benchmarks open hundreds of connections at once
    stub: OpenAIStub

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up mid-answer is a scenario under test, not a stub bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        with self.server.stub.serving(self.client_address):
            self._answer()

    def _answer(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if not self.path.endswith("/chat/completions"):
            return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        stub = self.server.stub
        outcome = stub._next(body)
        if outcome.delay:
            time.sleep(outcome.delay)
        if outcome.status != 200:
            error = {"message": f"stub status {outcome.status}", "type": "server_error", "code": None}
            return self._json(outcome.status, {"error": error}, outcome.headers)
        text = outcome.text if outcome.text is not None else stub.answer_text(body)
        if outcome.tool_call is not None:
            text = ""
        usage = {"prompt_tokens": len(json.dumps(body.get("messages")))// 4,
                 "completion_tokens": len(text) // 4 + 1}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream") and not outcome.ignores_stream:
            return self._stream(body, text, outcome, usage)
        time.sleep(stub.latency)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if outcome.tool_call is not None:
            message["tool_calls"] = [_tool_call(outcome.tool_call)]
        self._json(200, {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
                         "created": int(time.time()), "model": body.get("model"),
                         "choices": [{"index": 0, "message": message,
                                      "finish_reason": "tool_calls" if outcome.tool_call else "stop"}],
                         "usage": usage})

    def _stream(self, body: dict[str, Any], text: str, outcome: Outcome, usage: dict[str, int]) -> None:
        stub, tool_call = self.server.stub, outcome.tool_call
        pieces = re.findall(r"\S+\s*", text)
        begun = time.monotonic()
        time.sleep(stub.latency * stub.first_token_share)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model")}
        self._event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "finish_reason": None}]})
        # The last piece lands at ``latency`` after the request, the first at its share of it.
        pause = stub.latency * (1 - stub.first_token_share) / max(len(pieces) - 1, 1)
        for n, piece in enumerate(pieces):
            if n:
                # Sleep to a deadline, not for a pause, so oversleeping does not add up over pieces.
                due = begun + stub.latency * stub.first_token_share + pause * n + outcome.stall
                time.sleep(max(due - time.monotonic(), 0.0))
            self._event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        if tool_call is not None:
            call = {"index": 0, **_tool_call(tool_call)}
            self._event({**base, "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]})
        self._event({**base, "choices": [{"index": 0, "delta": {},
                                          "finish_reason": "tool_calls" if tool_call else "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            self._event({**base, "choices": [], "usage": usage})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _event(self, payload: dict[str, Any]) -> None:
        self._chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: dict[str, Any], headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _question(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")


def _tool_call(call: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    name, arguments = call
    return {"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency", type=float, default=0.8)
    parser.add_argument("--slow-word", help="questions containing it take --slow-seconds longer")
    parser.add_argument("--slow-seconds", type=float, default=30.0)
    parser.add_argument("--gevent", action="store_true", help="serve on greenlets (cheaper per open request)")
    args = parser.parse_args()
    if args.gevent:
        from gevent import monkey

        monkey.patch_all()
    stub = OpenAIStub(latency=args.latency, port=args.port, slow_word=args.slow_word,
                      slow_seconds=args.slow_seconds)
    print(f"openai stub on {stub.base_url} latency={args.latency}s", flush=True)
    stub._thread.run()


if __name__ == "__main__":
    main()
