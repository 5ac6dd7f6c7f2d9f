"""``parley export`` on PostgreSQL: throughput (messages/s) and peak memory, whatever the size.

Seeds N messages (10 per conversation, 1% with feedback, 1% labelled) into a fresh database with
COPY, then exports them in each format to /dev/null in a child process, through the same code as
``parley export`` (server-side cursor, redaction on), and reads that process's peak RSS. The target
is memory flat (under 200 MB) at any N: run it at two sizes and compare.

    .venv/bin/python bench/export.py [--messages 1000000] [--formats jsonl,csv,parquet]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
TEXTS = ("How do I reset my password? my email is jane.doe@example.com",
         "my card 4111 1111 1111 1111 was charged twice, call me on +1 415 555 0100",
         "where is my order A-123456", "how long does delivery take to Canada")


def seed(url: str, messages: int) -> float:
    from parley.stores.schema import upgrade
    from parley.stores.sql import open_database

    engine = open_database(url.replace("postgresql://", "postgresql+psycopg://"))
    upgrade(engine)
    engine.dispose()
    started = time.perf_counter()
    base = datetime(2026, 1, 1, tzinfo=UTC)
    sources = json.dumps([{"id": "reset-password", "title": "How do I reset my password?"}])
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY conversation (id, channel, customer, started_at, updated_at) FROM STDIN") as copy:
            for number in range(messages // 10 + 1):
                at = base + timedelta(seconds=number)
                copy.write_row((f"c{number}", "widget", f"+1415555{number:07d}", at, at))
        columns = ("public_id, conversation_id, direction, channel, text, created_at, in_reply_to, engine, "
                   "intent, confidence, sources, quick_replies, latency_ms, cached, model_version")
        with cursor.copy(f"COPY message ({columns}) FROM STDIN") as copy:
            for number in range(messages):
                at = base + timedelta(seconds=number // 10, microseconds=number % 10)
                inbound = number % 2 == 0
                copy.write_row((f"m{number}", f"c{number // 10}", "in" if inbound else "out", "widget",
                                TEXTS[number % 4] if inbound else "To reset your password, open Sign in.",
                                at, None if inbound else f"m{number - 1}", None if inbound else "offline",
                                None if inbound else "reset-password", None if inbound else 0.42,
                                "[]" if inbound else sources, "[]", None if inbound else 1.2, False,
                                None if inbound else "retrieval-bench"))
        with cursor.copy("COPY feedback (message_id, conversation_id, kind, score, created_at) FROM STDIN") as copy:
            for number in range(1, messages, 100):
                copy.write_row((f"m{number}", f"c{number // 10}", "answer", -1, base))
        with cursor.copy("COPY label (message_id, intent, source, created_at) FROM STDIN") as copy:
            for number in range(0, messages, 100):
                copy.write_row((f"m{number}", "reset-password", "import", base))
        connection.commit()
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def child(url: str, fmt: str) -> None:
    """Runs in its own process so its peak memory is the export's alone."""
    from parley.data.export import ExportQuery, encode, rows
    from parley.data.redaction import Redactor
    from parley.stores.sql import open_database

    engine = open_database(url.replace("postgresql://", "postgresql+psycopg://"))
    count = 0
    imported_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    redactor = Redactor.build({"ORDER": r"\bA-\d{6}\b"}, b"bench-key")

    def counted():  # noqa: ANN202
        nonlocal count
        for row in rows(engine, ExportQuery(), redactor):
            count += 1
            yield row

    size = 0
    with open("/dev/null", "wb") as sink:
        for chunk in encode(counted(), fmt):  # type: ignore[arg-type]
            size += len(chunk)
            sink.write(chunk)
    print(json.dumps({"count": count, "seconds": time.perf_counter() - started, "bytes": size,
                      "imported_mb": imported_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--formats", default="jsonl,csv,parquet")
    parser.add_argument("--child", nargs=2, metavar=("URL", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    name = f"parley_bench_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        print(f"seeded {args.messages:,} messages in {seed(url, args.messages):.1f} s")
        for fmt in args.formats.split(","):
            process = subprocess.Popen([sys.executable, __file__, "--child", url, fmt],
                                       stdout=subprocess.PIPE, text=True)
            output = process.stdout.read()  # type: ignore[union-attr]
            _, status, usage = os.wait4(process.pid, 0)
            if status != 0:
                raise SystemExit(f"the {fmt} export failed")
            figures = json.loads(output.splitlines()[-1])
            print(f"{fmt:8} {figures['count']:>10,} messages  {figures['count'] / figures['seconds']:>9,.0f} msg/s  "
                  f"{figures['bytes'] / 1e6:>8.1f} MB out  peak RSS {usage.ru_maxrss / 1024:.0f} MB "
                  f"({figures['imported_mb']:.0f} MB of it imports)")
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
