"""Handoff latency through the whole app: widget customers, reps in Slack (a loopback Web API).

For each of N conversations, one after the other: the customer asks for a person (time until the
thread's header is posted), writes to the rep (time until it is in the thread), and the rep
answers with a signed Events API payload (time until the widget's live stream has it). Webhook
requests go through Flask's test client; Slack calls go over real HTTP to a loopback stub.

Prints p50/p95/max in ms for each leg.

    .venv/bin/python bench/handoff.py [--conversations 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from parley.webhooks.app import create_app  # noqa: E402
from tests.integration.handoff_support import (  # noqa: E402
    HANDOFF_CHANNEL,
    PAYLOADS,
    SlackApi,
    handoff_settings,
    signed,
)
from tests.stubs.server import serving  # noqa: E402


def until(check, timeout: float = 10.0) -> float:  # noqa: ANN001 - a predicate
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("the handoff step never happened")
        time.sleep(0.0005)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100)
    args = parser.parse_args()
    api = SlackApi()
    legs: dict[str, list[float]] = {"open thread": [], "customer -> thread": [], "rep -> widget": []}
    template = json.loads((PAYLOADS / "slack" / "handoff_thread_reply.json").read_text())
    with serving(api) as slack, tempfile.TemporaryDirectory() as tmp:
        app = create_app(handoff_settings(Path(tmp), slack))
        client, services = app.test_client(), app.extensions["parley"]
        mailbox = services.adapters["widget"].mailbox
        try:
            for n in range(args.conversations):
                posted = len(api.posted)
                started = time.perf_counter()
                # One address per customer, as in life: the widget's per-address rate limit stays out of it.
                browser = {"REMOTE_ADDR": f"10.0.{n // 250}.{n % 250 + 1}"}
                started_with = client.post("/widget/api/messages", json={"text": "talk to a person"},
                                           environ_base=browser).get_json()
                conversation = started_with["conversation_id"]
                secret = {"X-Parley-Secret": started_with["secret"]}
                headers = lambda: [ts for ts, p in api.posted[posted:] if "blocks" in p]  # noqa: E731
                until(lambda: headers() and services.adapters["desk"].directory.conversation_of(
                    HANDOFF_CHANNEL, headers()[0]))
                legs["open thread"].append((time.perf_counter() - started) * 1000)
                thread = headers()[0]

                client.post("/widget/api/messages", json={"text": f"hello {n}", "conversation_id": conversation},
                            environ_base=browser, headers=secret)
                legs["customer -> thread"].append(until(lambda: any(
                    p.get("thread_ts") == thread and f"hello {n}" in p["text"] for _, p in api.posted)))

                body = json.loads(json.dumps(template))
                body["event_id"] = f"Ev{n:08d}"
                body["event"].update(thread_ts=thread, ts=f"{1732600000 + n}.000300", text=f"answer {n}")
                raw = json.dumps(body).encode()
                started = time.perf_counter()
                client.post("/slack/events", data=raw, content_type="application/json", headers=signed(raw))
                until(lambda: any(r.text == f"answer {n}" for e in mailbox.after(conversation, "0", 0.0)
                                  for r in e.replies))
                legs["rep -> widget"].append((time.perf_counter() - started) * 1000)
        finally:
            services.close()
    print(f"{args.conversations} handed-off widget conversations, SQLite, embedded inbox")
    for leg, values in legs.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"  {leg:<20} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   max {max(values):6.1f} ms")


if __name__ == "__main__":
    main()
