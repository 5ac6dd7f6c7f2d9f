"""A Slack Web API stub for benchmarks, on greenlets: ``chat.postMessage`` answered ok, and when
each channel got its first post, for ``GET /stats?run=ID`` (channels whose id contains ID).

    python bench/slack_stub.py PORT
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402

from gevent.pywsgi import WSGIServer  # noqa: E402

first_post: dict[str, float] = {}


def app(environ: dict, start_response) -> list[bytes]:  # noqa: ANN001 - WSGI
    path = environ["PATH_INFO"]
    if path == "/stats":
        run = parse_qs(environ.get("QUERY_STRING", "")).get("run", [""])[0]
        return respond(start_response, {c: t for c, t in first_post.items() if run in c})
    if path == "/readyz":
        return respond(start_response, {"ok": True})
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if path.endswith("chat.postMessage"):
        fields = json.loads(body) if body.startswith(b"{") else {k: v[0] for k, v in parse_qs(body.decode()).items()}
        first_post.setdefault(str(fields.get("channel")), time.time())
    return respond(start_response, {"ok": True, "channel": "D0", "ts": f"{time.time():.6f}", "team_id": "T0123ACME",
                                    "user_id": "U0PARLEYBOT", "bot_id": "B0PARLEY", "user": "parley"})


def respond(start_response, payload: dict) -> list[bytes]:  # noqa: ANN001 - WSGI
    data = json.dumps(payload).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


if __name__ == "__main__":
    WSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None).serve_forever()
