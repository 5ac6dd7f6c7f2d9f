"""Creating and upgrading the SQL schema through the Alembic migrations in ``parley/migrations/``.

The app upgrades to the newest revision at start, so the embedded mode needs no extra step;
``parley db upgrade|downgrade`` does the same by hand (and prints SQL with ``--sql``). On
PostgreSQL an advisory lock lets several pods start at once: one migrates, the others wait.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from parley.errors import SchemaBehind

# Inside the package, so a plain (non-editable) install carries them.
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
# The revision that matches the tables `create_all` made before migrations existed.
BASELINE = "0001"
_LOCK_ID = 0x7061726C6579  # "parley"


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def upgrade(database: Engine, revision: str = "head") -> None:
    with _sqlite_file_lock(database), database.begin() as connection:
        _lock(connection)
        _adopt_unversioned(connection)
        command.upgrade(alembic_config(connection), revision)


def downgrade(database: Engine, revision: str) -> None:
    with _sqlite_file_lock(database), database.begin() as connection:
        _lock(connection)
        command.downgrade(alembic_config(connection), revision)


def current(database: Engine) -> str | None:
    with database.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current(database: Engine) -> None:
    """Raise ``SchemaBehind`` unless the database is at the newest revision: for the read-only
    commands, which must not need (or use) the right to alter tables."""
    revision, head = current(database), current_head()
    if revision == head:
        return
    if revision is None:
        raise SchemaBehind(f"the database has no Parley schema yet (this Parley needs revision {head}): "
                           "run `parley db upgrade` (or start `parley serve` once) with credentials "
                           "that may create tables")
    known = {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision not in known:
        raise SchemaBehind(f"the database is at revision {revision}, which this Parley does not know "
                           f"(its newest is {head}): the database was upgraded by a newer Parley")
    raise SchemaBehind(f"the database is at revision {revision} and this Parley needs {head}: run "
                       "`parley db upgrade` with credentials that may alter tables, then try again")


def current_head() -> str:
    """The newest revision the code ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


@contextmanager
def _sqlite_file_lock(database: Engine) -> Iterator[None]:
    """Serialise migrations of one SQLite file across processes (gunicorn workers starting together).

    Python's sqlite3 runs DDL outside a transaction, so two processes could both see no table and
    both create it; an exclusive lock on a file beside the database makes the second one wait.
    """
    path = database.url.database
    if database.dialect.name != "sqlite" or not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock(connection: Connection) -> None:
    # Held until the transaction ends; SQLite files are locked by _sqlite_file_lock.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


def _adopt_unversioned(connection: Connection) -> None:
    """A database made by ``create_all`` before migrations existed starts from the baseline."""
    tables = set(inspect(connection).get_table_names())
    if "message" in tables and "alembic_version" not in tables:
        command.stamp(alembic_config(connection), BASELINE)
