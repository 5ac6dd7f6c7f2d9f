"""The ``parley`` command: serve, chat in the terminal, check the configuration."""

from __future__ import annotations

import os
import signal
from typing import Any

import click
import structlog
from gunicorn.app.base import BaseApplication

from parley import logs
from parley.errors import ConfigError
from parley.metrics import mark_worker_dead, prepare_multiprocess_dir
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


@main.command()
@click.pass_obj
def doctor(config: str | None) -> None:
    """Check a deployment from the inside: config, SQL, Redis, LLM, channel credentials, public URL."""
    from parley.doctor import run_checks

    settings = _settings(config)
    click.echo(f"ok    config: {config or os.environ.get('PARLEY_CONFIG') or 'config/parley.yaml'} is valid")
    failed = 0
    for check in run_checks(settings):
        failed += check.status == "FAIL"
        click.echo(f"{check.status:<5} {check.name}: {check.detail}")
    if failed:
        raise click.ClickException(f"{failed} check(s) failed")


@main.command("check-config")
@click.pass_obj
def check_config(config: str | None) -> None:
    """Validate the YAML and the knowledge base without starting anything."""
    from parley.stores.knowledge import load_index

    settings = _settings(config)
    try:
        index = load_index(settings.knowledge.path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"configuration OK: bot {settings.bot.name!r}, {len(index)} knowledge articles "
               f"(version {index.version}), log at {settings.database_url.split('@')[-1]}")


@main.command()
@click.option("--host", envvar="PARLEY_HOST", default=None, help="Interface to listen on.")
@click.option("--port", envvar="PORT", type=int, default=None, help="Port to listen on.")
@click.option("--processes", envvar="PARLEY_PROCESSES", type=int, default=1, show_default=True,
              help="gunicorn worker processes (more than 1 needs REDIS_URL: state must be shared).")
# 64: most threads only wait (an open widget stream, a webhook on the inbox), which costs a stack,
# not CPU; webhooks that must ack within 3 s keep 48 of them beside the 16 widget streams
# (channels.widget.max_streams).
@click.option("--threads", envvar="PARLEY_THREADS", type=int, default=64, show_default=True,
              help="Threads per process.")
@click.option("--graceful-timeout", envvar="PARLEY_GRACEFUL_TIMEOUT", type=int, default=20, show_default=True,
              help="Seconds a stopping process has to finish its requests and in-flight messages.")
@click.option("--workers/--no-workers", "run_workers", default=True, show_default=True,
              help="Answer messages in this process too (--no-workers: only `parley worker`s do; needs REDIS_URL).")
@click.pass_obj
def serve(config: str | None, host: str | None, port: int | None, processes: int, threads: int,
          graceful_timeout: int, run_workers: bool) -> None:
    """Serve the webhooks and the widget through gunicorn."""
    settings = _settings(config)
    host = host or settings.server.host
    port = port or settings.server.port
    if processes > 1 and settings.storage.redis_url is None:
        raise click.ClickException("--processes > 1 needs REDIS_URL: the embedded store lives in one process")
    if not run_workers and settings.storage.redis_url is None:
        raise click.ClickException("--no-workers needs REDIS_URL: nothing else could reach the embedded inbox")
    if settings.logging.json_format:  # production: nothing but JSON lines on the pod's output
        logs.configure(level=settings.logging.level, json_format=True)
        structlog.get_logger("parley.serve").info("starting", url=f"http://{host}:{port}",
                                                  processes=processes, threads=threads)
    else:
        click.echo(f"Parley is starting on http://{host}:{port}/widget  (Ctrl+C to stop)")
    prepare_multiprocess_dir()
    _Gunicorn(settings, {
        "bind": f"{host}:{port}", "workers": processes, "threads": threads,
        "worker_class": "gthread", "graceful_timeout": graceful_timeout, "timeout": 60,
        "accesslog": None, "errorlog": "-", "loglevel": "info", "worker_exit": _close_services,
        "post_worker_init": _end_streams_on_sigterm,
        "child_exit": lambda _server, worker: mark_worker_dead(worker.pid),
        "logconfig_dict": logs.gunicorn_logconfig(json_format=settings.logging.json_format),
    }, run_workers=run_workers).run()


def _end_streams_on_sigterm(worker: Any) -> None:
    # Open widget event streams would otherwise hold the graceful shutdown for its whole timeout;
    # ended, the browsers reconnect to another process.
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("parley")
    stop = signal.getsignal(signal.SIGTERM)
    if services is None or not callable(stop):
        return

    def drain_then_stop(signum: int, frame: Any) -> None:
        for adapter in services.adapters.values():
            adapter.drain()
        stop(signum, frame)

    signal.signal(signal.SIGTERM, drain_then_stop)


def _close_services(_server: Any, worker: Any) -> None:
    # On SIGTERM: finish in-flight messages and hand the Redis partitions over at once, instead of
    # leaving them to lapse after the visibility timeout.
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("parley")
    if services is not None:
        services.close()


class _Gunicorn(BaseApplication):
    """gunicorn with the app built by ``create_app`` in each worker, after the fork."""

    def __init__(self, settings: Settings, options: dict[str, Any], *, run_workers: bool = True) -> None:
        self._settings = settings
        self._options = options
        self._run_workers = run_workers
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from parley.webhooks.app import create_app

        return create_app(self._settings, start_workers=self._run_workers)


@main.command()
@click.pass_obj
def chat(config: str | None) -> None:
    """Talk to the bot in the terminal: each message takes the path a webhook's message takes."""
    from parley.channels.terminal import TerminalChannel
    from parley.errors import ParleyError
    from parley.wiring import build_services

    settings = _settings(config)
    terminal = TerminalChannel(write=click.echo, sender=os.environ.get("USER", "you"),
                               max_text_chars=settings.limits.max_text_chars)
    services = build_services(settings, direct=(terminal,))
    click.echo(f"{settings.bot.greeting}\n(type 'quit' or press Ctrl+D to leave)")
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


# Registered here, defined apart: the Redis worker and inbox operations.
from parley.cli_worker import inbox, worker  # noqa: E402 - after ``main`` exists

main.add_command(worker)
main.add_command(inbox)

# The data scientist's commands: schema, export, labels, training, models, evaluation.
from parley.cli_data import db, export, label  # noqa: E402
from parley.cli_models import evaluate, models_group, train  # noqa: E402

for _command in (db, export, label, train, models_group, evaluate):
    main.add_command(_command)


@main.group()
def telegram() -> None:
    """Telegram Bot API set-up."""


@telegram.command("set-webhook")
@click.argument("url", required=False)
@click.pass_obj
def telegram_set_webhook(config: str | None, url: str | None) -> None:
    """Register URL (default: PARLEY_PUBLIC_URL + /telegram/webhook) and the secret token."""
    from parley.channels.telegram import TelegramAdapter
    from parley.errors import UpstreamError

    settings = _settings(config)
    channel = settings.channels.telegram
    if channel.bot_token is None or channel.secret_token is None:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN first")
    if url is None:
        if settings.server.public_url is None:
            raise click.ClickException("give the webhook URL, or set PARLEY_PUBLIC_URL")
        url = settings.server.public_url.rstrip("/") + "/telegram/webhook"
    adapter = TelegramAdapter(bot_token=channel.bot_token.get_secret_value(),
                              secret_token=channel.secret_token.get_secret_value(),
                              api_url=channel.api_url, max_text_chars=settings.limits.max_text_chars)
    try:
        adapter.set_webhook(url)
    except UpstreamError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        adapter.close()
    click.echo(f"Telegram webhook set to {url} (updates carry the secret token)")
