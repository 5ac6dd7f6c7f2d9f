"""The browsers of bench/streams.py, on greenlets: opens the panels, then on "reply" (stdin) posts
one message per conversation and reports which panels saw its reply. Prints one JSON line each.

    python bench/stream_client.py URL STREAMS CONVERSATIONS
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402
from gevent.event import Event  # noqa: E402


def main() -> None:
    url, streams, conversations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    session = requests.Session()
    ids = []
    for _ in range(conversations):
        first = session.post(f"{url}/widget/api/messages", json={"text": "hello",
                             "client_message_id": uuid.uuid4().hex}, timeout=30)
        ids.append((first.json()["conversation_id"], {"X-Parley-Secret": first.json()["secret"]}))
    opened, refused, seen = Event(), [0], {}
    open_count = [0]
    started = time.perf_counter()

    def panel(number: int) -> None:
        conversation, secret = ids[number % conversations]
        try:
            response = requests.get(f"{url}/widget/api/conversations/{conversation}/events", stream=True,
                                    headers=secret, timeout=120)
        except requests.RequestException:
            refused[0] += 1
            return
        if response.status_code != 200:
            refused[0] += 1
            return
        open_count[0] += 1
        if open_count[0] + refused[0] >= streams:
            opened.set()
        for line in response.iter_lines(decode_unicode=True):
            if line and line.startswith("data:") and '"type":"message"' in line:
                seen[number] = time.perf_counter()
                break
        response.close()

    panels = [gevent.spawn(panel, n) for n in range(streams)]
    opened.wait(timeout=120)
    print(json.dumps({"open": open_count[0], "refused": refused[0],
                      "seconds": time.perf_counter() - started}), flush=True)
    sys.stdin.readline()
    posted = time.perf_counter()
    session = requests.Session()  # the first one's connection idled past the server's keep-alive
    for conversation, secret in ids:
        session.post(f"{url}/widget/api/messages", timeout=30, headers=secret,
                     json={"text": "how long does delivery take", "conversation_id": conversation})
    gevent.joinall(panels, timeout=60)
    delays = sorted((at - posted) * 1000 for at in seen.values())
    print(json.dumps({"panels": open_count[0], "received": len(seen),
                      "p50_ms": delays[len(delays) // 2] if delays else float("nan"),
                      "max_ms": delays[-1] if delays else float("nan")}), flush=True)


if __name__ == "__main__":
    main()
