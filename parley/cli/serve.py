"""``parley serve``: the webhooks and the widget through gunicorn, one app per worker process."""

from __future__ import annotations

import logging
import multiprocessing
import signal
from typing import Any

import click
import structlog
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from parley import logs
from parley.cli.common import settings_of
from parley.cli.heap import freeze_startup_heap
from parley.metrics import mark_worker_dead, prepare_multiprocess_dir
from parley.settings import Settings, secret_values


@click.command()
@click.option("--host", envvar="PARLEY_HOST", default=None, help="Interface to listen on.")
@click.option("--port", envvar="PORT", type=int, default=None, help="Port to listen on.")
@click.option("--processes", envvar="PARLEY_PROCESSES", type=int, default=1, show_default=True,
              help="gunicorn worker processes (more than 1 needs REDIS_URL: state must be shared).")
# Each request is a greenlet (gunicorn's gevent worker): an open widget stream or a webhook waiting
# on Redis costs a few kilobytes, so the bound is memory, not threads.
@click.option("--connections", envvar="PARLEY_CONNECTIONS", type=int, default=12_000, show_default=True,
              help="Concurrent connections per process (open widget streams included).")
@click.option("--graceful-timeout", envvar="PARLEY_GRACEFUL_TIMEOUT", type=int, default=20, show_default=True,
              help="Seconds a stopping process has to finish its requests and in-flight messages.")
@click.option("--workers/--no-workers", "run_workers", default=True, show_default=True,
              help="Answer messages in this process too (--no-workers: only `parley worker`s do; needs REDIS_URL).")
@click.pass_obj
def serve(config: str | None, host: str | None, port: int | None, processes: int, connections: int,
          graceful_timeout: int, run_workers: bool) -> None:
    """Serve the webhooks and the widget through gunicorn."""
    settings = settings_of(config)
    host = host or settings.server.host
    port = port or settings.server.port
    if processes > 1 and settings.storage.redis_url is None:
        raise click.ClickException("--processes > 1 needs REDIS_URL: the embedded store lives in one process")
    if not run_workers and settings.storage.redis_url is None:
        raise click.ClickException("--no-workers needs REDIS_URL: nothing else could reach the embedded inbox")
    if settings.logging.json_format:  # production: nothing but JSON lines on the pod's output
        logs.configure(level=settings.logging.level, json_format=True, secrets=secret_values(settings))
        structlog.get_logger("parley.serve").info("starting", url=f"http://{host}:{port}",
                                                  processes=processes, connections=connections)
    else:
        click.echo(f"Parley is starting on http://{host}:{port}/widget  (Ctrl+C to stop)")
    prepare_multiprocess_dir()
    _embed_knowledge(settings)
    _Gunicorn(settings, {
        "bind": f"{host}:{port}", "workers": processes, "worker_connections": connections,
        # gevent, chosen by measurement (bench/streams.py, bench/throughput.py): thousands of open
        # streams and in-flight LLM calls per process, where each held a thread before.
        "worker_class": "gevent", "graceful_timeout": graceful_timeout, "timeout": 60,
        "accesslog": None, "errorlog": "-", "loglevel": "info", "worker_exit": _close_services,
        # gunicorn 25+ opens a control socket (reload, worker count, shutdown) under $HOME: Parley
        # needs none, every server on a host would share one path, and the pod's home is read-only.
        "control_socket_disable": True,
        "post_worker_init": _end_streams_on_sigterm,
        "child_exit": lambda _server, worker: mark_worker_dead(worker.pid),
        "logconfig_dict": logs.gunicorn_logconfig(json_format=settings.logging.json_format,
                                                  secrets=secret_values(settings)),
        "logger_class": _QuietAccessLogger,
    }, run_workers=run_workers).run()


class _QuietAccessLogger(glogging.Logger):
    """gunicorn's logger, minus the access line's fields when nothing would write them.

    With a ``logconfig_dict`` gunicorn formats every request's access fields even though our config
    switches its access logger off: 4% of an acknowledgement's CPU (py-spy, bench/inbox.py).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


def _end_streams_on_sigterm(worker: Any) -> None:
    # Open widget event streams would otherwise hold the graceful shutdown for its whole timeout;
    # ended, the browsers reconnect to another process.
    services = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("parley")
    stop = signal.getsignal(signal.SIGTERM)
    if services is None or not callable(stop):
        return

    def drain() -> None:
        for adapter in services.adapters.values():
            adapter.drain()

    def drain_then_stop(signum: int, frame: Any) -> None:
        # A signal handler runs in gevent's event loop, where nothing may wait (not even for a
        # lock): draining wakes every open stream, so it runs in a greenlet of its own.
        import gevent

        gevent.spawn(drain)
        stop(signum, frame)

    signal.signal(signal.SIGTERM, drain_then_stop)


def _close_services(_server: Any, worker: Any) -> None:
    # On SIGTERM: finish in-flight messages and hand unstarted claims to other processes at once,
    # instead of leaving them to lapse after the visibility timeout.
    app = getattr(worker, "wsgi", None)
    services = getattr(app, "extensions", {}).get("parley")
    if services is not None:
        services.close()


def _embed_knowledge(settings: Settings) -> None:
    """Embed the knowledge base's new passages and fit its own model once, before the worker
    processes start: each then reads both from the cache (a first start at 10,000 articles embeds
    for minutes, past gunicorn's worker timeout, and every worker would fit the same model). In a
    child process, so that gunicorn's own process stays small."""
    if settings.knowledge.embedding_model == "off":
        return
    child = multiprocessing.get_context("fork").Process(target=_embed_into_cache, args=(settings,))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise click.ClickException("could not index the knowledge base (the reason is logged above)")


def _embed_into_cache(settings: Settings) -> None:
    # Not parley.wiring: the platform SDKs it imports must load after gevent patches a worker.
    from parley.data.knowledge_model import knowledge_model_of
    from parley.errors import ConfigError
    from parley.stores import embeddings, knowledge

    embedding_dir = settings.knowledge.embedding_dir
    try:
        index = knowledge.load_index(settings.knowledge.path, cache_dir=settings.knowledge_cache_dir,
                                     embedder=embeddings.load_embedder(embedding_dir),
                                     language=settings.knowledge.language)
        knowledge_model_of(index, cache_dir=settings.knowledge_cache_dir,
                           embedding_model=str(embedding_dir) if embedding_dir else None)
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(1) from None


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

        app = create_app(self._settings, start_workers=self._run_workers)
        freeze_startup_heap()
        return app
