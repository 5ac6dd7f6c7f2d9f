"""The conversation log's cost per answered message: its two writes (the customer's message, then
its replies), from one worker and from many at once, on PostgreSQL (a database of the bench's own).

Prints CPU and wall milliseconds per message, and the transactions committed per message (group
commit shares them between workers writing at the same time).

    .venv/bin/python bench/log.py [--messages 2000] [--workers 1,16]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parley.core.envelope import Envelope, Reply, reply_id  # noqa: E402
from parley.stores.sql import SqlConversationLog, open_database  # noqa: E402
from tests.integration.redis_processes import postgres_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", default="1,16", help="threads writing at once, comma-separated")
    args = parser.parse_args()
    print(f"{'workers':>8} {'messages':>9} {'CPU ms/msg':>11} {'wall ms/msg':>12} {'commits/msg':>12}")
    with postgres_database() as url:
        log = SqlConversationLog(open_database(url.replace("postgresql://", "postgresql+psycopg://")))
        log.create_schema()
        commits = [0]
        event.listen(log.database, "commit", lambda _connection: commits.__setitem__(0, commits[0] + 1))
        for run, workers in enumerate(int(w) for w in args.workers.split(",")):
            write_all(log, run, 200, workers)  # warm-up: connections, compiled statements
            commits[0] = 0
            cpu, wall = time.process_time(), time.perf_counter()
            write_all(log, run + 100, args.messages, workers)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"{workers:>8} {args.messages:>9} {cpu / args.messages * 1000:>11.2f} "
                  f"{wall / args.messages * 1000:>12.2f} {commits[0] / args.messages:>12.2f}")
        log.database.dispose()


def write_all(log: SqlConversationLog, run: int, messages: int, workers: int) -> None:
    """``messages`` answered messages over 300 conversations, ``workers`` threads at a time."""
    numbers = iter(range(messages))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            envelope = Envelope(channel="slack", conversation_id=f"slack:T1:D{run}-{n % 300}",
                                message_id=f"{run}-{n}", sender=f"U{n % 300}", text="where is my order?")
            log.record_inbound(envelope)
            log.record_replies(envelope, [Reply(conversation_id=envelope.conversation_id, channel="slack",
                                                text="Your order left the warehouse today. " * 4,
                                                in_reply_to=envelope.message_id, reply_id=reply_id(envelope, 0))])

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main()
