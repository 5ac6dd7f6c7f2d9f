"""The ``parley`` command: one module per group of commands, all registered on ``main`` here.

Each command imports what it runs inside its own body, so ``parley --help`` loads none of it.
"""

from __future__ import annotations

import click

from parley.cli.chat import chat
from parley.cli.data import db, export, label
from parley.cli.doctor import check_config, doctor
from parley.cli.init import init
from parley.cli.models import evaluate, models_group, train
from parley.cli.reports import forget, report
from parley.cli.serve import serve
from parley.cli.telegram import telegram
from parley.cli.worker import inbox, worker

COMMANDS = (init, doctor, check_config, serve, chat, worker, inbox, db, export, label, train, models_group,
            evaluate, report, forget, telegram)


@click.group()
@click.version_option(package_name="parley", message="%(prog)s %(version)s")
@click.option("--config", "config", envvar="PARLEY_CONFIG", default=None,
              help="Path of the YAML (default config/parley.yaml).")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """Parley, a self-hosted customer-engagement bot."""
    ctx.obj = config


for command in COMMANDS:
    main.add_command(command)
