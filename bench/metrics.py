"""What the metrics cost: the per-message calls the pipeline makes, and one ``/metrics`` scrape.

In-process mode keeps values in memory; multiprocess mode (PROMETHEUS_MULTIPROC_DIR, as in the
image) writes each change to a memory-mapped file and a scrape reads every process's files. Each mode
runs in a fresh interpreter, because prometheus_client picks its mode at import.

    .venv/bin/python bench/metrics.py [--messages 20000] [--processes 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import statistics, sys, time
from parley.core.envelope import AnswerMeta, Envelope, Reply
from parley.metrics import Metrics, exposition

messages, processes = int(sys.argv[1]), int(sys.argv[2])
metrics = Metrics.create()
channels = ["widget", "slack", "twilio", "telegram"]
envelopes = [Envelope(channel=c, conversation_id=f"c{i}", message_id=f"m{i}", sender="s", text="hi")
             for i, c in enumerate(channels)]
replies = [[Reply(conversation_id=e.conversation_id, channel=e.channel, text="ok",
                  meta=AnswerMeta(engine="llm", prompt_tokens=100, completion_tokens=20))] for e in envelopes]
start = time.perf_counter()
for n in range(messages):
    k = n % 4
    metrics.received(channels[k], stored=True)
    metrics.acknowledged(channels[k], 0.004)
    metrics.answered(envelopes[k], replies[k])
per_message = (time.perf_counter() - start) / messages
scrapes = []
for _ in range(20):
    t = time.perf_counter()
    body, _ = exposition(metrics, None)
    scrapes.append(time.perf_counter() - t)
print(f"{per_message * 1e6:.1f} {statistics.median(scrapes) * 1e3:.2f} {len(body)}")
"""


def run(messages: int, processes: int, multiproc_dir: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    if multiproc_dir:
        env["PROMETHEUS_MULTIPROC_DIR"] = multiproc_dir
    outputs = []
    # Several interpreters writing to one directory stand in for gunicorn's processes; the last
    # scrape reads them all.
    for _ in range(processes if multiproc_dir else 1):
        done = subprocess.run([sys.executable, "-c", CHILD, str(messages), str(processes)], cwd=ROOT,
                              env=env, capture_output=True, text=True, check=True)
        outputs.append(done.stdout.split())
    return outputs[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    print(f"{'mode':<28}{'µs per message':>16}{'scrape ms':>12}{'body bytes':>12}")
    micro, scrape, size = run(args.messages, 1, None)
    print(f"{'in-process':<28}{micro:>16}{scrape:>12}{size:>12}")
    with tempfile.TemporaryDirectory() as directory:
        micro, scrape, size = run(args.messages, args.processes, directory)
        print(f"{f'multiprocess ({args.processes} processes)':<28}{micro:>16}{scrape:>12}{size:>12}")
    print("(per message: received + acknowledged + answered with one LLM reply; median of 20 scrapes)")


if __name__ == "__main__":
    main()
