"""The Flask app factory: everything is wired from one ``Settings``; nothing at import time."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from parley import logs
from parley.errors import ParleyError, PayloadTooLarge, RateLimited
from parley.metrics import exposition
from parley.settings import Settings, load_settings, secret_values
from parley.webhooks import admin, channels, slack_actions, widget
from parley.wiring import Services, build_services

logger = structlog.get_logger("parley.http")


def create_app(settings: Settings | None = None, *, start_workers: bool = True) -> Flask:
    settings = settings or load_settings()
    logs.configure(level=settings.logging.level, json_format=settings.logging.json_format,
                   secrets=secret_values(settings))
    services = build_services(settings)
    # No static folder: the widget blueprint serves its one script; nothing else is exposed.
    app = Flask(__name__, static_folder=None)
    app.json = GuardedJSONProvider(app)
    if settings.server.trusted_proxies:
        # Behind an Ingress every request comes from the proxy: without this, all widget visitors
        # share one rate-limit bucket, and the URL Twilio signed (its public scheme and host) is
        # unknown. Only as many hops as configured are believed (spoofing).
        hops = settings.server.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=hops)
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_body_bytes
    app.extensions["parley"] = services
    app.register_blueprint(widget.bp)
    for blueprint in channels.blueprints:
        app.register_blueprint(blueprint)
    slack_actions.init_app(app, services)  # the reps' desk: its routes and its Bolt app
    app.register_blueprint(admin.bp)
    _register_health(app, services)
    _register_errors(app, services)
    app.before_request(_bind_request)
    app.before_request(_limit_body)
    if start_workers:
        services.workers.start()
    return app


def _bind_request() -> None:
    structlog.contextvars.clear_contextvars()
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id, path=request.path)


class GuardedJSONProvider(DefaultJSONProvider):
    """``request.get_json`` that treats absurdly nested JSON as malformed instead of crashing."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:  # "[[[[…" within the body limit: not a message anyone sent
            raise ValueError("JSON nested too deeply") from None


def _limit_body() -> None:
    # Flask enforces MAX_CONTENT_LENGTH only when a route reads the body: refuse it up front, so
    # every route answers 413 alike, before any other check.
    limit = current_app.config["MAX_CONTENT_LENGTH"] or 0
    if request.endpoint == widget.UPLOAD_ENDPOINT:  # a customer's file: its own, larger limit
        limit = request.max_content_length = widget.upload_limit()
        if (request.content_length or 0) > limit:
            raise widget.too_big()
    if (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    # Werkzeug caps multipart parts but not url-encoded fields; count them before anything parses.
    if request.mimetype == "application/x-www-form-urlencoded":
        limit = current_app.extensions["parley"].settings.limits.max_form_fields
        fields = request.get_data(cache=True).count(b"&") + 1
        if fields > limit:
            raise PayloadTooLarge(f"{fields} form fields", public=f"too many form fields (max {limit})")


def _register_health(app: Flask, services: Services) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        services.log.ping()
        for check in services.health:  # Redis when configured: raises Unavailable (503) when down
            check()
        return jsonify(status="ready", knowledge_articles=len(services.index))

    @app.get("/metrics")
    def metrics() -> Response:
        # Prometheus scrapes from inside the cluster; with PARLEY_ADMIN_TOKEN set it must send it too.
        token = services.settings.admin.token
        if token is not None:
            admin.require_bearer(token, "/metrics")
        body, content_type = exposition(services.metrics, services.inbox)
        return Response(body, content_type=content_type)


def _register_errors(app: Flask, services: Services) -> None:
    @app.errorhandler(ParleyError)
    def parley_error(exc: ParleyError) -> tuple[Response, int]:
        logger.warning("request_refused", status=exc.status, error=type(exc).__name__, detail=str(exc))
        services.metrics.failed(type(exc).__name__)
        response = jsonify(error=exc.public_message)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response, exc.status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        logger.warning("request_refused", status=status, error=type(exc).__name__)
        services.metrics.failed(type(exc).__name__)
        return jsonify(error=(exc.name or "error").lower()), status

    @app.errorhandler(Exception)
    def crash(exc: Exception) -> tuple[Response, int]:
        logger.exception("request_crashed", error=type(exc).__name__)
        services.metrics.failed(type(exc).__name__)
        return jsonify(error="internal error"), 500
