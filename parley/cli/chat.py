"""``parley chat``: talk to the bot in the terminal, through the terminal's channel adapter."""

from __future__ import annotations

import os

import click

from parley.cli.common import settings_of


@click.command()
@click.pass_obj
def chat(config: str | None) -> None:
    """Talk to the bot in the terminal: each message takes the path a webhook's message takes."""
    from parley.channels.terminal import TerminalChannel
    from parley.errors import ParleyError
    from parley.wiring import build_services

    settings = settings_of(config)
    terminal = TerminalChannel(write=click.echo, sender=os.environ.get("USER", "you"),
                               max_text_chars=settings.limits.max_text_chars)
    services = build_services(settings, direct=(terminal,))
    click.echo(f"{settings.catalog.get('greeting')}\n(type 'quit' or press Ctrl+D to leave)")
    try:
        while (text := _typed()) is not None:
            try:
                terminal.say(services.pipeline.process, text)
            except ParleyError as exc:  # as a widget's visitor would be told: one line, go on
                click.echo(f"error: {exc.public_message}", err=True)
    finally:
        services.close()
    click.echo("bye")


def _typed() -> str | None:
    """The customer's next line; None when they leave (quit, exit, Ctrl+D)."""
    try:
        text = click.prompt("you", prompt_suffix="> ").strip()
    except (EOFError, click.Abort):
        return None
    return None if text.lower() in {"quit", "exit"} else text
