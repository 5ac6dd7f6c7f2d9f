"""Behind the Ingress: each visitor has its own per-address widget limit, only when proxies are trusted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from parley.settings import Settings
from parley.webhooks.app import create_app
from tests.conftest import make_settings

SHOP = "https://www.shop.example"


def per_address_limit(settings: Settings, limit: int) -> Settings:
    widget = settings.channels.widget.model_copy(update={"messages_per_minute_per_ip": limit})
    return settings.model_copy(update={"channels": settings.channels.model_copy(update={"widget": widget})})


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator:
    apps: list[Flask] = []

    def make(trusted_proxies: str) -> Flask:
        settings = make_settings(tmp_path / trusted_proxies, PARLEY_WIDGET_ORIGINS=SHOP,
                                 PARLEY_TRUSTED_PROXIES=trusted_proxies)
        apps.append(create_app(per_address_limit(settings, 2)))
        return apps[-1]

    yield make
    for app in apps:
        app.extensions["parley"].close()


def first_message(app: Flask, visitor: str) -> int:
    # Every request arrives from the Ingress's address; only X-Forwarded-For tells visitors apart.
    return app.test_client().post("/widget/api/messages", json={"text": "hello"}, headers={
        "Origin": SHOP, "X-Forwarded-For": visitor}, environ_base={"REMOTE_ADDR": "10.0.0.9"}).status_code


def test_behind_a_trusted_proxy_each_visitor_has_its_own_limit(make_app) -> None:
    app = make_app("1")
    assert [first_message(app, "203.0.113.1") for _ in range(3)] == [200, 200, 429]
    assert first_message(app, "203.0.113.2") == 200


def test_without_trusted_proxies_forwarded_for_is_ignored(make_app) -> None:
    # A client could otherwise pick a fresh address per request and never be limited.
    app = make_app("0")
    assert [first_message(app, f"203.0.113.{n}") for n in range(3)] == [200, 200, 429]
