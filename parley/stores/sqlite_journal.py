"""What the embedded mode keeps on disk so a restart neither loses nor repeats: inbox, dedupe, ledger.

Without Redis the inbox, its dedupe keys, its dead letters and the send ledger live in this
process. Held only in memory, a restart lost every message acknowledged but not yet answered (a
platform never sends it again: it got its 200), and answered the platform's retry of one answered
just before (the ledger had forgotten it was sent). Here each is also written to SQLite (the
conversation log's file, its own tables), in the same critical section that changes the memory:

* ``InboxJournal``: every stored envelope until it is answered or dead-lettered, the dedupe keys
  until they expire, the dead letters. ``MemoryInbox`` reads it back when the process starts.
* ``SqliteSendLedger``: which reply ids were sent. A claim whose send was neither confirmed nor
  released when the process died may be taken again (at least once, as with Redis).

Writes are synchronous commits in WAL mode with ``synchronous=NORMAL``: they survive a killed
process (``kill -9``); only a power cut may lose the newest.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from parley.core.envelope import Envelope, envelope_from_json, envelope_to_json
from parley.errors import Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embedded_inbox (
    entry INTEGER PRIMARY KEY, conversation TEXT NOT NULL, envelope TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS embedded_seen (key TEXT PRIMARY KEY, until REAL NOT NULL);
CREATE INDEX IF NOT EXISTS embedded_seen_until ON embedded_seen (until);
CREATE TABLE IF NOT EXISTS embedded_dead_letter (
    entry INTEGER PRIMARY KEY, conversation TEXT NOT NULL, envelope TEXT NOT NULL, attempts INTEGER NOT NULL,
    reason TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS embedded_send_ledger (reply_id TEXT PRIMARY KEY, sent INTEGER NOT NULL, at REAL NOT NULL);
"""


class JournalDatabase:
    """One SQLite connection (autocommit, explicit transactions) shared by the inbox and the ledger,
    one transaction at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def read(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    yield self._connection
                except BaseException:
                    self._connection.execute("ROLLBACK")
                    raise
                self._connection.execute("COMMIT")
            except sqlite3.OperationalError as exc:  # locked past the timeout, disk full, read-only
                raise Unavailable(f"embedded store unavailable: {exc}") from exc


def open_journal_database(path: Path) -> JournalDatabase:
    return JournalDatabase(path)


class InboxJournal:
    """The embedded inbox's durable copy; every method is called under the inbox's own lock."""

    def __init__(self, database: JournalDatabase, *, clock=time.time) -> None:  # noqa: ANN001
        self._db = database
        self._clock = clock  # wall time: dedupe horizons must survive a restart

    def queued(self) -> list[tuple[int, Envelope, int]]:
        """Every envelope stored and not yet answered, oldest first: (entry, envelope, attempts)."""
        rows = self._db.read("SELECT entry, envelope, attempts FROM embedded_inbox ORDER BY entry")
        return [(entry, envelope_from_json(data), attempts) for entry, data, attempts in rows]

    def seen(self) -> list[tuple[str, float]]:
        """Unexpired dedupe keys, soonest to expire first, with their remaining seconds."""
        now = self._clock()
        rows = self._db.read("SELECT key, until FROM embedded_seen WHERE until > ? ORDER BY until", (now,))
        return [(key, until - now) for key, until in rows]

    def dead(self) -> list[tuple[int, Envelope, int, str]]:
        rows = self._db.read("SELECT entry, envelope, attempts, reason FROM embedded_dead_letter ORDER BY entry")
        return [(entry, envelope_from_json(data), attempts, reason) for entry, data, attempts, reason in rows]

    def stored(self, entry: int, envelope: Envelope, *, dedupe_ttl: float) -> None:
        now = self._clock()
        with self._db.transaction() as db:
            db.execute("DELETE FROM embedded_seen WHERE until <= ?", (now,))
            db.execute("INSERT OR REPLACE INTO embedded_seen (key, until) VALUES (?, ?)",
                       (envelope.dedupe_key, now + dedupe_ttl))
            db.execute("INSERT INTO embedded_inbox (entry, conversation, envelope) VALUES (?, ?, ?)",
                       (entry, envelope.conversation_id, envelope_to_json(envelope)))

    def taken(self, entry: int, attempts: int) -> None:
        with self._db.transaction() as db:
            db.execute("UPDATE embedded_inbox SET attempts = ? WHERE entry = ?", (attempts, entry))

    def answered(self, entry: int) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM embedded_inbox WHERE entry = ?", (entry,))

    def dead_lettered(self, entry: int, reason: str) -> None:
        with self._db.transaction() as db:
            db.execute("INSERT OR REPLACE INTO embedded_dead_letter (entry, conversation, envelope, attempts, reason, at) "
                       "SELECT entry, conversation, envelope, attempts, ?, ? FROM embedded_inbox WHERE entry = ?",
                       (reason[:2000], self._clock(), entry))
            db.execute("DELETE FROM embedded_inbox WHERE entry = ?", (entry,))


class SqliteSendLedger:
    """Each reply id goes out once, across restarts; ``sending`` claims of a dead process may go again."""

    def __init__(self, database: JournalDatabase, *, ttl: float, clock=time.time) -> None:  # noqa: ANN001
        self._db = database
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()  # guards the counters; the database guards itself
        self._claims = 0
        self._unconfirmed: set[str] = set()  # sent, but the disk refused to record it

    def claim(self, reply_id: str) -> bool:
        with self._db.transaction() as db:
            now = self._clock()
            with self._lock:
                self._claims += 1
                sweep = self._claims % 1000 == 0
            if sweep:  # forget what is past the horizon, now and then
                db.execute("DELETE FROM embedded_send_ledger WHERE at < ?", (now - self._ttl,))
            row = db.execute("SELECT sent FROM embedded_send_ledger WHERE reply_id = ?", (reply_id,)).fetchone()
            if (row is not None and row[0]) or reply_id in self._unconfirmed:
                return False
            db.execute("INSERT OR REPLACE INTO embedded_send_ledger (reply_id, sent, at) VALUES (?, 0, ?)",
                       (reply_id, now))
            return True

    def release(self, reply_id: str) -> None:
        with self._db.transaction() as db:
            db.execute("DELETE FROM embedded_send_ledger WHERE reply_id = ? AND sent = 0", (reply_id,))

    def confirm(self, reply_id: str) -> None:
        try:
            with self._db.transaction() as db:
                db.execute("UPDATE embedded_send_ledger SET sent = 1, at = ? WHERE reply_id = ?",
                           (self._clock(), reply_id))
        except Unavailable:
            # Never raises: the reply went out. This process remembers it; after a restart the
            # claim reads as unfinished and may go once more (at least once, never lost).
            with self._lock:
                self._unconfirmed.add(reply_id)


def read_status(path: Path, *, dead_letters: int) -> tuple[dict[str, int], list[tuple[int, Envelope, int, str]]]:
    """The embedded inbox as another process sees it on disk, for ``parley inbox status``: counts
    (the shape of ``RedisInbox.status`` where the disk can tell) and the oldest dead letters.

    Opened read-only: looking must neither create the file nor take a write lock from the server.
    ``started`` counts queued messages a worker took at least once (being answered, or failed and
    waiting for their retry); which of the two only the serving process knows.
    """
    if not path.exists():
        return {"queued": 0, "conversations": 0, "started": 0, "dead_letters": 0}, []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = {name for (name,) in
                  connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "embedded_inbox" not in tables:
            return {"queued": 0, "conversations": 0, "started": 0, "dead_letters": 0}, []
        queued, conversations, started = connection.execute(
            "SELECT COUNT(*), COUNT(DISTINCT conversation), COUNT(*) FILTER (WHERE attempts > 0) "
            "FROM embedded_inbox").fetchone()
        [dead] = connection.execute("SELECT COUNT(*) FROM embedded_dead_letter").fetchone()
        rows = connection.execute("SELECT entry, envelope, attempts, reason FROM embedded_dead_letter "
                                  "ORDER BY entry LIMIT ?", (dead_letters,)).fetchall()
    except sqlite3.Error as exc:
        raise Unavailable(f"cannot read the embedded inbox in {path}: {exc}") from exc
    finally:
        connection.close()
    letters = [(entry, envelope_from_json(data), attempts, reason) for entry, data, attempts, reason in rows]
    counts = {"queued": queued, "conversations": conversations, "started": started, "dead_letters": dead}
    return counts, letters
