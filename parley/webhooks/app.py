"""The Flask app factory: everything is wired from one ``Settings``; nothing at import time."""

from __future__ import annotations

import hmac
import uuid

import structlog
from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from parley import logs
from parley.errors import InvalidSignature, ParleyError, RateLimited
from parley.metrics import exposition
from parley.settings import Settings, load_settings
from parley.webhooks import admin, channels, slack_actions, widget
from parley.wiring import Services, build_services

logger = structlog.get_logger("parley.http")


def create_app(settings: Settings | None = None, *, start_workers: bool = True) -> Flask:
    settings = settings or load_settings()
    logs.configure(level=settings.logging.level, json_format=settings.logging.json_format)
    services = build_services(settings)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.limits.max_body_bytes
    app.extensions["parley"] = services
    app.register_blueprint(widget.bp)
    for blueprint in channels.blueprints:
        app.register_blueprint(blueprint)
    app.register_blueprint(slack_actions.bp)
    app.register_blueprint(admin.bp)
    _register_health(app, services)
    _register_errors(app, services)
    app.before_request(_bind_request)
    if start_workers:
        services.workers.start()
    return app


def _bind_request() -> None:
    structlog.contextvars.clear_contextvars()
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id, path=request.path)


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
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").encode()
        if token is not None and not hmac.compare_digest(given, token.get_secret_value().encode()):
            raise InvalidSignature("/metrics: wrong or missing bearer token")
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
