"""Databases of the data tests' own: a SQLite file, or a fresh PostgreSQL database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.conftest import POSTGRES_ADMIN


@contextmanager
def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A ``DATABASE_URL``-style URL to an empty database, dropped afterwards ("" for SQLite)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'parley.db'}"
        return
    name = f"parley_data_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def environ_for(url: str) -> dict[str, str]:
    """The environment that makes the settings use ``url`` (SQLite is the data dir's default)."""
    return {} if url.startswith("sqlite") else {"DATABASE_URL": url}
