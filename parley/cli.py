"""The ``parley`` command: serve, chat in the terminal, check the configuration."""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import click
from gunicorn.app.base import BaseApplication

from parley.core.envelope import Envelope
from parley.errors import ConfigError
from parley.settings import Settings, load_settings


def _settings(config: str | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
@click.option("--config", "config", envvar="PARLEY_CONFIG", default=None,
              help="Path of the YAML (default config/parley.yaml).")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """Parley, a self-hosted customer-engagement bot."""
    ctx.obj = config


@main.command("check-config")
@click.pass_obj
def check_config(config: str | None) -> None:
    """Validate the YAML and the knowledge base without starting anything."""
    from parley.core.knowledge import KnowledgeIndex
    from parley.ingest import load_articles

    settings = _settings(config)
    try:
        index = KnowledgeIndex(load_articles(settings.knowledge.path))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"configuration OK: bot {settings.bot.name!r}, {len(index)} knowledge articles "
               f"(version {index.version}), log at {settings.database_url.split('@')[-1]}")


@main.command()
@click.option("--host", envvar="PARLEY_HOST", default=None, help="Interface to listen on.")
@click.option("--port", envvar="PORT", type=int, default=None, help="Port to listen on.")
@click.option("--processes", type=int, default=1, show_default=True,
              help="gunicorn worker processes (more than 1 needs REDIS_URL: state must be shared).")
@click.option("--threads", type=int, default=32, show_default=True, help="Threads per process.")
@click.pass_obj
def serve(config: str | None, host: str | None, port: int | None, processes: int, threads: int) -> None:
    """Serve the webhooks and the widget through gunicorn."""
    settings = _settings(config)
    host = host or settings.server.host
    port = port or settings.server.port
    if processes > 1 and settings.storage.redis_url is None:
        raise click.ClickException("--processes > 1 needs REDIS_URL: the embedded store lives in one process")
    click.echo(f"Parley is starting on http://{host}:{port}/widget  (Ctrl+C to stop)")
    _Gunicorn(settings, {
        "bind": f"{host}:{port}", "workers": processes, "threads": threads,
        "worker_class": "gthread", "graceful_timeout": 20, "timeout": 60,
        "accesslog": None, "errorlog": "-", "loglevel": "info",
    }).run()


class _Gunicorn(BaseApplication):
    """gunicorn with the app built by ``create_app`` in each worker, after the fork."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from parley.webhooks.app import create_app

        return create_app(self._settings)


@main.command()
@click.pass_obj
def chat(config: str | None) -> None:
    """Talk to the bot in the terminal, with the same engine the widget uses."""
    from parley.wiring import build_services

    settings = _settings(config)
    services = build_services(settings)
    conversation = f"cli-{uuid.uuid4().hex[:12]}"
    click.echo(f"{settings.bot.greeting}\n(type 'quit' or press Ctrl+D to leave)")
    for number in range(1, sys.maxsize):
        try:
            text = click.prompt("you", prompt_suffix="> ").strip()
        except (EOFError, click.Abort):
            break
        if text.lower() in {"quit", "exit"}:
            break
        envelope = Envelope(channel="cli", conversation_id=conversation, message_id=f"{conversation}-{number}",
                            sender=os.environ.get("USER", "you"), text=text, timestamp=time.time())
        for reply in services.dialogue.handle(envelope):
            click.echo(f"bot> {reply.text}")
            for source in reply.meta.sources:
                click.echo(f"     (source: {source.title} [{source.id}])")
    click.echo("bye")
