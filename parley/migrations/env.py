"""Alembic environment: the SQLModel tables of ``parley.stores.sql`` on the configured database.

``parley db ...`` and the app pass an open connection; plain ``alembic`` (with ``alembic.ini``)
reads the URL from the Parley settings (``DATABASE_URL`` or the SQLite file in the data dir).
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import parley.stores.sql  # noqa: F401 - registers the tables on SQLModel.metadata
from parley.settings import load_settings
from parley.stores.sql import open_database

config = context.config
target_metadata = SQLModel.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or load_settings().database_url


def _configure(**options: object) -> None:
    # Batch mode lets SQLite alter tables (it copies them); PostgreSQL alters in place.
    context.configure(target_metadata=target_metadata, render_as_batch=True, compare_type=True,
                      **options)


def run_offline() -> None:
    _configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    database = open_database(_url())
    with database.begin() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    database.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
