"""What the commands share: the settings (a config error is a one-line CLI error) and the database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click

from parley import logs
from parley.errors import ConfigError
from parley.settings import Settings, load_settings, secret_values

WHEN = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"])


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


def utc(moment: datetime | None) -> datetime | None:
    """A moment typed on the command line, read as UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
