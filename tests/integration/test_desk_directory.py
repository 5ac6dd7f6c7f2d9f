"""The desk's directory in SQL, as several pods use it at once (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from parley.stores.desk import SqlDeskDirectory
from parley.stores.sql import SqlConversationLog, open_database


def test_reps_opening_the_app_home_at_once_are_all_kept_current(tmp_path: Path, database: dict[str, str]) -> None:
    url = database.get("DATABASE_URL", f"sqlite:///{tmp_path / 'parley.db'}")
    engine = open_database(url.replace("postgresql://", "postgresql+psycopg://"))
    SqlConversationLog(engine).create_schema()
    directory = SqlDeskDirectory(engine)
    reps = [f"U0REP{n:04d}" for n in range(4)]
    start, failures = threading.Barrier(8), []

    def open_tabs() -> None:  # a pod handling Slack's event (and its retries) for every rep at once
        start.wait()
        for rep in reps:
            try:
                directory.home_opened(rep)
            except Exception as exc:  # noqa: BLE001 - what the test counts
                failures.append(exc)

    threads = [threading.Thread(target=open_tabs) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert sorted(directory.home_viewers(time.time() - 60, 50)) == reps
    time.sleep(0.01)
    directory.home_opened(reps[0])  # opened again: now the latest
    assert directory.home_viewers(time.time() - 60, 50)[0] == reps[0]
    assert directory.home_viewers(time.time() + 60, 50) == []  # nobody opened it since
    directory.home_opened("U" + "9" * 40)  # longer than a Slack id can be: kept, cut to the column
    assert "U" + "9" * 31 in directory.home_viewers(time.time() - 60, 50)
    engine.dispose()
