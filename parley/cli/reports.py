"""The admin's commands on the log as a whole: ``parley report`` (how the bot does) and
``parley forget`` (GDPR erasure of one customer)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click

from parley.cli.common import WHEN, WHEN_HELP, database_of, readonly_database_of, settings_of, utc


@click.command("report")
@click.option("--since", type=WHEN, help=f"From this moment on: {WHEN_HELP}.")
@click.option("--until", type=WHEN, help=f"Before this moment (excluded): {WHEN_HELP}.")
@click.option("--channel", help="Only this channel (widget, slack, twilio, telegram...).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON instead of an HTML page.")
@click.option("--low-confidence", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Answers below this confidence count as low-confidence questions.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write (default: standard output).")
@click.pass_obj
def report(config: str | None, since: datetime | None, until: datetime | None, channel: str | None,
           as_json: bool, low_confidence: float, output: Path | None) -> None:
    """Containment, handoffs and their reasons, CSAT, rep response and resolution times, thumbs and
    the questions the bot could not answer, by channel and by day: an HTML page with charts.

    Read-only: the schema must be current. Questions are redacted like an export.
    """
    from parley.data.export import ExportQuery, redactor_of
    from parley.data.report import build_report
    from parley.data.report_html import render

    settings = settings_of(config)
    query = ExportQuery(since=utc(since), until=utc(until), channel=channel)
    built = build_report(readonly_database_of(settings), query, redactor_of(settings),
                         low_confidence=low_confidence)
    text = json.dumps(built.as_json(), indent=2) + "\n" if as_json else render(built)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"report written to {output}", err=True)


@click.command("forget")
@click.argument("customer")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget(config: str | None, customer: str, yes: bool) -> None:
    """Erase CUSTOMER (their id on the channel: phone number, Slack or Telegram user id; or a
    conversation id) from the log and the shared state, leaving a tombstone export honours.

    Prints what was erased and each conversation's pseudonym in redacted exports (with
    data.pseudonym_key), to delete the rows of export files made before.
    """
    from parley.data.forget import forget as erase
    from parley.wiring.stores import forgetters_of

    settings = settings_of(config)
    if not yes:
        click.confirm("Erase every conversation of this customer? This cannot be undone", abort=True, err=True)
    state = forgetters_of(settings)
    erased = erase(database_of(settings), settings, customer, state=state, requested_by="cli")
    click.echo(json.dumps(erased.as_dict(), indent=2))
    if not state:
        click.echo("note: without REDIS_URL the sessions live in the serving process; they expire after "
                   "storage.session_ttl_seconds, or erase them now with POST /admin/forget", err=True)
