"""What the commands share: the settings (a config error is a one-line CLI error), the database, the
moments typed on the command line and the progress bar of long work."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from parley import logs
from parley.errors import ConfigError
from parley.settings import Settings, load_settings, secret_values

Item = TypeVar("Item")
WHEN_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
WHEN = click.DateTime(WHEN_FORMATS)
# What `--since/--until` accept, for their help: the formats above, read as UTC.
WHEN_HELP = "a date (2026-01-31) or a moment (2026-01-31T14:30:00), in UTC"


def settings_of(config: str | None) -> Settings:
    """The settings, with logging configured from them: log lines go to stderr (stdout is the
    command's output: ``parley eval --json`` prints the document alone) and never hold a secret.

    A command speaks of warnings and errors only (``serve`` and ``worker``, which run for long,
    configure the settings' own level afterwards); DEBUG, when asked for, is honoured.
    """
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    level = "DEBUG" if settings.logging.level == "DEBUG" else "WARNING"
    logs.configure(level=level, json_format=settings.logging.json_format, secrets=secret_values(settings))
    return settings


def database_of(settings: Settings, *, migrate: bool = True) -> Any:
    """The conversation log's database (SQLAlchemy), upgraded to the newest schema unless told not."""
    from parley.stores.schema import upgrade
    from parley.stores.sql import open_database

    database = open_database(settings.database_url)
    if migrate:
        upgrade(database)
    return database


def readonly_database_of(settings: Settings) -> Any:
    """The conversation log's database as it is, for the commands that only read it (``export``,
    ``label suggest``, ``models list``, ``eval``): they never migrate, since the credentials they
    run with may be read-only, and fail in one line when the schema is not the code's."""
    from sqlalchemy.exc import SQLAlchemyError

    from parley.errors import SchemaBehind
    from parley.stores.schema import require_current
    from parley.stores.sql import open_database

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise click.ClickException(f"no conversation log at {url.removeprefix('sqlite:///')} yet: start "
                                   "`parley serve` once, or run `parley db upgrade`")
    database = open_database(url)
    try:
        require_current(database)
    except SchemaBehind as exc:
        database.dispose()
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        database.dispose()
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise click.ClickException(f"cannot read the database at {url.split('@')[-1]}: {reason}") from None
    return database


def utc(moment: datetime | None) -> datetime | None:
    """A moment typed on the command line, read as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def progress(items: Iterable[Item], *, unit: str, total: int | None = None) -> Iterator[Item]:
    """``items`` as they go by, with a progress bar on stderr while stderr is a terminal: stdout
    stays the command's output, and pipes and CI logs get no bar at all."""
    from tqdm import tqdm

    return iter(tqdm(items, total=total, unit=f" {unit}", file=sys.stderr, disable=None, leave=False,
                     dynamic_ncols=True))
