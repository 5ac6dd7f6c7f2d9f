"""Group commit: many workers' log writes share transactions, and each still behaves as if alone.

The workers are real threads and the databases real (SQLite and PostgreSQL). To make the batch
deterministic, the first transaction is held at its first statement until every other worker's
write is queued behind it; the next transaction then carries all of them.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlmodel import Session

from parley.core.envelope import Envelope, Reply, reply_id
from parley.stores.sql import Message, SqlConversationLog, open_database

WORKERS = 12


@pytest.fixture
def log(tmp_path: Path, database: dict[str, str]) -> SqlConversationLog:
    url = database.get("DATABASE_URL", f"sqlite:///{tmp_path / 'parley.db'}")
    log = SqlConversationLog(open_database(url.replace("postgresql://", "postgresql+psycopg://")))
    log.create_schema()
    yield log
    log.database.dispose()


def envelope(n: int, text: str = "where is my order?") -> Envelope:
    return Envelope(channel="slack", conversation_id=f"slack:T1:D{n:03d}", message_id=f"1700000000.{n:06d}",
                    sender=f"U{n:03d}", text=text)


def concurrently(log: SqlConversationLog, first: Callable[[], object],
                 rest: list[Callable[[], object]]) -> tuple[list[object], int]:
    """Run ``first``, and while its transaction is held, ``rest`` on threads at once: one batch.

    Returns what each of ``rest`` got (a result or an exception) and the transactions committed."""
    commits = 0
    held = threading.Event()

    def hold_the_first_batch(*_args: object) -> None:
        if held.is_set():
            return
        held.set()
        for _ in range(400):  # until every other write is queued behind this transaction
            if len(log._writes._queue) >= len(rest):
                return
            threading.Event().wait(0.05)

    def count(_connection: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(log.database, "before_cursor_execute", hold_the_first_batch)
    event.listen(log.database, "commit", count)
    results: list[object] = [None] * len(rest)

    def run(i: int) -> None:
        try:
            results[i] = rest[i]()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each caller got
            results[i] = exc

    leader = threading.Thread(target=first)
    leader.start()
    assert held.wait(30)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(rest))]
    for thread in [*threads]:
        thread.start()
    for thread in [leader, *threads]:
        thread.join(timeout=60)
    event.remove(log.database, "before_cursor_execute", hold_the_first_batch)
    event.remove(log.database, "commit", count)
    return results, commits


def replies_for(message: Envelope, count: int = 2) -> list[Reply]:
    return [Reply(conversation_id=message.conversation_id, channel=message.channel, text=f"answer part {i}",
                  in_reply_to=message.message_id, reply_id=reply_id(message, i)) for i in range(count)]


def test_concurrent_workers_share_transactions_and_keep_every_message(log: SqlConversationLog) -> None:
    leader, messages = envelope(999), [envelope(n) for n in range(WORKERS)]

    stored, commits = concurrently(log, lambda: log.record_inbound(leader),
                                   [lambda m=m: log.record_inbound(m) for m in messages])
    assert stored == [True] * WORKERS
    assert commits == 2, "the writes queued behind the first transaction commit together"

    _, commits = concurrently(log, lambda: log.record_replies(leader, replies_for(leader)),
                              [lambda m=m: log.record_replies(m, replies_for(m)) for m in messages])
    assert commits == 2
    for message in [leader, *messages]:
        assert [r.text for r in log.replies_to(message)] == ["answer part 0", "answer part 1"]
    # A platform's retry of any of them is recognised as stored before, in a batch as alone.
    again, _ = concurrently(log, lambda: log.record_inbound(leader),
                            [lambda m=m: log.record_inbound(m) for m in messages])
    assert again == [False] * WORKERS


def test_a_message_and_its_retry_in_one_batch_are_stored_once(log: SqlConversationLog) -> None:
    message, others = envelope(1), [envelope(n) for n in range(2, WORKERS)]

    results, _ = concurrently(log, lambda: log.record_inbound(envelope(999)),
                              [lambda m=m: log.record_inbound(m) for m in [*others, message, message]])

    assert results[:-2] == [True] * len(others)
    assert sorted(results[-2:]) == [False, True]
    with Session(log.database) as session:
        rows = session.scalar(select(func.count()).select_from(Message)
                              .where(Message.public_id == message.dedupe_key))
    assert rows == 1


def test_a_row_the_database_refuses_fails_only_its_own_write(log: SqlConversationLog) -> None:
    poison = envelope(0, text="broken \ud800 surrogate")
    good = [envelope(n) for n in range(1, WORKERS)]

    results, _ = concurrently(log, lambda: log.record_inbound(envelope(999)),
                              [lambda m=m: log.record_inbound(m) for m in [*good[:5], poison, *good[5:]]])

    assert isinstance(results[5], UnicodeEncodeError)
    assert results[:5] + results[6:] == [True] * len(good)
    assert not log.has_conversation(poison.conversation_id, "slack")
    assert all(log.has_conversation(m.conversation_id, "slack") for m in good)


def test_two_processes_racing_to_store_one_message_store_it_once(log: SqlConversationLog) -> None:
    """Another pod's log commits the same message between this batch's look-up and its insert."""
    if log.database.dialect.name == "sqlite":  # one writer at a time: the race cannot happen there
        return
    other = SqlConversationLog(open_database(log.database.url.render_as_string(hide_password=False)))
    first = envelope(1, "hello")
    message = replace(first, message_id="1700000001.000002", text="where is my order?")
    log.record_inbound(first)  # the conversation exists; only the message row is raced for
    raced = threading.Event()

    def other_pod_first(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.startswith("INSERT INTO message") and not raced.is_set():
            raced.set()
            assert other.record_inbound(message) is True

    event.listen(log.database, "before_cursor_execute", other_pod_first)
    try:
        assert log.record_inbound(message) is False
    finally:
        event.remove(log.database, "before_cursor_execute", other_pod_first)
        other.database.dispose()
    assert raced.is_set()
    with Session(log.database) as session:
        assert session.scalar(select(func.count()).select_from(Message)
                              .where(Message.public_id == message.dedupe_key)) == 1
