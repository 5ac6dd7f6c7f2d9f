"""``parley worker`` (dialogue workers without the web server) and ``parley inbox`` (operations)."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click

from parley.cli.common import settings_of
from parley.cli.heap import freeze_startup_heap
from parley.errors import ParleyError
from parley.settings import Settings

if TYPE_CHECKING:  # imported when used, so `parley --help` stays quick
    from parley.stores.redis_inbox import RedisInbox


def _redis_settings(config: str | None) -> Settings:
    settings = settings_of(config)
    if settings.storage.redis_url is None:
        raise click.ClickException("this command needs REDIS_URL: the embedded inbox lives inside "
                                   "`parley serve` and no other process can reach it")
    return settings


@click.command()
@click.option("--metrics-port", envvar="PARLEY_METRICS_PORT", type=int, default=None,
              help="Serve Prometheus metrics on this port (the web pods serve theirs at /metrics).")
@click.pass_obj
def worker(config: str | None, metrics_port: int | None) -> None:
    """Answer messages from the shared Redis inbox, without serving HTTP (stop with SIGTERM)."""
    # Workers are greenlets, as under `parley serve`: patched before any store or SDK is imported.
    from gevent import monkey

    monkey.patch_all()
    from parley import logs
    from parley.settings import secret_values
    from parley.wiring import build_services

    settings = _redis_settings(config)
    logs.configure(level=settings.logging.level, json_format=settings.logging.json_format,
                   secrets=secret_values(settings))
    services = build_services(settings)
    freeze_startup_heap()
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    services.workers.start()
    if metrics_port is not None:
        from parley.metrics import start_metrics_server

        start_metrics_server(services.metrics, services.inbox, port=metrics_port)
    click.echo(f"Parley worker: up to {services.workers.workers} messages in flight, waiting for messages "
               "(SIGTERM or Ctrl+C to stop)")
    stopping.wait()
    services.close()  # finishes the messages in flight, then hands unstarted claims to other workers
    click.echo("worker stopped")


@click.group()
def inbox() -> None:
    """See and act on the inbox: queued, in-flight and dead-lettered messages (replay and drop need Redis)."""


@inbox.command()
@click.option("--limit", type=int, default=20, show_default=True, help="Dead letters to list.")
@click.pass_obj
def status(config: str | None, limit: int) -> None:
    """Queued messages, conversations in flight and waiting, and the dead letters with their reasons.

    Embedded (no REDIS_URL), the inbox is read from its SQLite file, as `parley serve` keeps it.
    """
    from parley.stores import redis_inbox_admin

    settings = settings_of(config)
    if settings.storage.redis_url is None:
        _embedded_status(settings, limit)
        return
    redis_inbox = _inbox(config)
    with _refusals():
        summary = redis_inbox.status()
        letters = redis_inbox_admin.dead_letters(redis_inbox, limit)
    click.echo(f"queued: {summary['queued']}  conversations in flight: {summary['in_flight']}  "
               f"waiting for a worker: {summary['ready']}  dead letters: {summary['dead_letters']}")
    for letter in letters:
        envelope = letter.envelope
        click.echo(f"{letter.id}  {envelope.channel}  conversation {envelope.conversation_id}  "
                   f"message {envelope.message_id}  attempts {letter.attempts}  reason: {letter.reason}")


def _embedded_status(settings: Settings, limit: int) -> None:
    from parley.stores.sqlite_journal import read_status
    from parley.wiring.stores import embedded_journal_path

    path = embedded_journal_path(settings)
    with _refusals():
        summary, letters = read_status(path, dead_letters=limit)
    click.echo(f"embedded inbox ({path}): queued: {summary['queued']}  conversations: "
               f"{summary['conversations']}  started (being answered or retrying): {summary['started']}  "
               f"dead letters: {summary['dead_letters']}")
    for entry, envelope, attempts, reason in letters:
        click.echo(f"{entry}  {envelope.channel}  conversation {envelope.conversation_id}  "
                   f"message {envelope.message_id}  attempts {attempts}  reason: {reason}")


@inbox.command()
@click.argument("dead_letter_id")
@click.pass_obj
def replay(config: str | None, dead_letter_id: str) -> None:
    """Queue a dead-lettered message again (it is answered at most once: the log remembers)."""
    from parley.stores import redis_inbox_admin

    with _refusals():
        envelope = redis_inbox_admin.replay(_inbox(config), dead_letter_id)
    click.echo(f"replayed {dead_letter_id}: conversation {envelope.conversation_id}, "
               f"message {envelope.message_id}")


@inbox.command()
@click.argument("dead_letter_id")
@click.pass_obj
def drop(config: str | None, dead_letter_id: str) -> None:
    """Delete a dead-lettered message for good."""
    from parley.stores import redis_inbox_admin

    with _refusals():
        envelope = redis_inbox_admin.drop(_inbox(config), dead_letter_id)
    click.echo(f"dropped {dead_letter_id}: conversation {envelope.conversation_id}, "
               f"message {envelope.message_id}")


def _inbox(config: str | None) -> RedisInbox:
    from parley.wiring import redis_inbox_of

    return redis_inbox_of(_redis_settings(config))


class _refusals:  # noqa: N801 - reads as "with refusals():"
    """Our errors become a one-line CLI error (exit 1), not a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, value, traceback) -> None:  # noqa: ANN001 - context manager protocol
        if isinstance(value, ParleyError):
            raise click.ClickException(str(value)) from None
