"""The data scientist's commands: ``parley db``, ``export``, ``label``, ``train``, ``models``, ``eval``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from parley.cli.common import WHEN, WHEN_HELP, database_of, progress, readonly_database_of, settings_of, utc

@click.group()
def db() -> None:
    """Create, upgrade or downgrade the SQL schema (Alembic migrations)."""


@db.command("upgrade")
@click.argument("revision", default="head")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.pass_obj
def db_upgrade(config: str | None, revision: str, sql: bool) -> None:
    """Upgrade to REVISION (default: the newest)."""
    from alembic import command

    from parley.stores import schema

    settings = settings_of(config)
    if sql:
        command.upgrade(schema.alembic_config(url=settings.database_url), revision, sql=True)
        return
    database = database_of(settings, migrate=False)
    schema.upgrade(database, revision)
    click.echo(f"database at revision {schema.current(database)}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--sql", is_flag=True, help="Print the SQL instead of running it.")
@click.pass_obj
def db_downgrade(config: str | None, revision: str, sql: bool) -> None:
    """Downgrade to REVISION ('base' drops every table: the data goes with them)."""
    from alembic import command

    from parley.stores import schema

    settings = settings_of(config)
    if sql:
        command.downgrade(schema.alembic_config(url=settings.database_url), revision, sql=True)
        return
    database = database_of(settings, migrate=False)
    schema.downgrade(database, revision)
    click.echo(f"database at revision {schema.current(database) or 'base (empty)'}")


@db.command("current")
@click.pass_obj
def db_current(config: str | None) -> None:
    """Print the database's schema revision."""
    from parley.stores import schema

    click.echo(schema.current(database_of(settings_of(config), migrate=False)) or "base (empty)")


@click.command("export")
@click.option("--since", type=WHEN, help=f"Messages from this moment on: {WHEN_HELP}.")
@click.option("--until", type=WHEN, help=f"Messages before this moment (excluded): {WHEN_HELP}.")
@click.option("--channel", help="Only this channel (widget, slack, twilio, telegram...).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl",
              show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output).")
@click.option("--no-redact", is_flag=True,
              help="Export raw text and ids, with personal data. Only where you may hold it.")
@click.option("--what", type=click.Choice(["messages", "handoffs"]), default="messages", show_default=True,
              help="One row per message, or one per handoff step (requested, claimed, resolved...).")
@click.pass_obj
def export(config: str | None, since: datetime | None, until: datetime | None, channel: str | None,
           fmt: str, output: Path | None, no_redact: bool, what: str) -> None:
    """Stream every message with its conversation, engine metadata, feedback and label (or, with
    ``--what handoffs``, every handoff step). Erased conversations are never exported.

    Read-only: the schema must be current (``parley db upgrade`` first otherwise).
    """
    from parley.data import export_events
    from parley.data.export import SCHEMA, ExportQuery, encode, redactor_of, rows

    settings = settings_of(config)
    query = ExportQuery(since=utc(since), until=utc(until), channel=channel)
    database = readonly_database_of(settings)
    produce, schema = (rows, SCHEMA) if what == "messages" else (export_events.handoff_rows, export_events.SCHEMA)
    counted = _count(produce(database, query, None if no_redact else redactor_of(settings)))
    unit = "messages" if what == "messages" else "handoff steps"
    if output is not None:  # `-o data/january.parquet` in a fresh checkout (DVC removes its outputs)
        output.parent.mkdir(parents=True, exist_ok=True)
    with (output.open("wb") if output else _stdout()) as out:
        for chunk in encode(progress(counted, unit=unit), fmt, schema=schema):  # type: ignore[arg-type]
            out.write(chunk)
    click.echo(f"exported {counted.count} {unit} ({'NOT redacted' if no_redact else 'redacted'})"
               + (f" to {output}" if output else ""), err=True)


class _Counter:
    def __init__(self, items: Iterator[dict[str, Any]]) -> None:
        self._items = items
        self.count = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for item in self._items:
            self.count += 1
            yield item


def _count(items: Iterator[dict[str, Any]]) -> _Counter:
    return _Counter(items)


def _stdout() -> Any:
    return contextlib.nullcontext(click.get_binary_stream("stdout"))


@click.group()
def label() -> None:
    """Label customer messages with the article (or 'handoff') they needed."""


@label.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8"))
@click.pass_obj
def label_import(config: str | None, csv_file: Any) -> None:
    """Store labels from a CSV with the columns message_id,intent."""
    from parley.data.labels import import_labels
    from parley.stores.knowledge import load_articles

    settings = settings_of(config)
    articles = load_articles(settings.knowledge.path)
    report = import_labels(database_of(settings), progress(csv_file, unit="rows"),
                           intents={a.id for a in articles})
    for problem in report.problems:
        click.echo(f"skipped: {problem}", err=True)
    click.echo(f"stored {report.stored} labels" + (f", skipped {len(report.problems)} rows"
                                                    if report.problems else ""))
    if report.problems and not report.stored:
        raise SystemExit(1)


@label.command("suggest")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.pass_obj
def label_suggest(config: str | None, limit: int) -> None:
    """Print (CSV) unlabelled messages to label first: bad feedback, then low confidence (read-only)."""
    from parley.data.labels import suggest, write_suggestions

    write_suggestions(suggest(readonly_database_of(settings_of(config)), limit=limit), sys.stdout)
