"""The real server, a customer's site on another origin embedding the one-tag snippet, and Chromium.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``./dev test``), driven by Playwright
with its executable path set: no browser download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import CONFIG, ROOT
from tests.integration.test_server import PARLEY, free_port, wait_until_ready
from tests.stubs.openai_stub import OpenAIStub
from tests.support.relay import Relay

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUTPUT = ROOT / "test-output"
ADMIN_TOKEN = "browser-tests-admin-token"
PER_BROWSER_LIMIT = 4

XSS_ARTICLE = """---
id: gift-wrapping
title: Do you offer gift wrapping?
tags: [gift, wrapping]
questions:
  - can you gift wrap my order
  - gift wrapping options
---
Gift wrapping costs $4. <img src=x onerror="window.__xss = 1"> <script>window.__xss = 2</script>
See [our gift guide](javascript:window.__xss=3) or [the wrapping page](https://acme.example/gifts).
"""


@dataclass(frozen=True)
class Site:
    """The Parley server, the cable browsers reach it through, and a customer's page on another origin."""

    server_url: str  # direct, for the tests' own requests
    public_url: str  # through the cable, for the browser
    host_url: str
    database: Path
    cable: Relay  # cut() it to take the browser's network away
    log: Path  # everything the server wrote (stdout and stderr)


def _host_page(server_url: str) -> bytes:
    # What a customer pastes from the README: one tag, nothing else from Parley.
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Shop</title><style>body{{font:18px serif;background:#fffbeb}} button{{all:unset}}</style></head>
<body><h1>A customer's shop</h1><p>Our products, on our own site.</p>
<script src="{server_url}/widget/widget.js" data-bot="acme" defer></script>
</body></html>""".encode()


def _serve_host_page(page: bytes) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_address[1]


def _config_with_tight_limit(path: Path) -> Path:
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    data["channels"]["widget"]["messages_per_minute"] = PER_BROWSER_LIMIT
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@contextmanager
def running_site(work: Path, **environ: str) -> Iterator[Site]:
    """``parley serve`` on a free port (behind a cable), its knowledge base, and a customer's page."""
    knowledge = work / "knowledge"
    shutil.copytree(ROOT / "config" / "knowledge", knowledge)
    (knowledge / "gift-wrapping.md").write_text(XSS_ARTICLE, encoding="utf-8")
    port = free_port()
    server_url = f"http://127.0.0.1:{port}"
    cable = Relay(port)
    public_url = cable.url
    httpd, host_port = _serve_host_page(_host_page(public_url))
    env = {**os.environ, "PORT": str(port), "PARLEY_DATA_DIR": str(work / "var"),
           "PARLEY_KNOWLEDGE": str(knowledge), "PARLEY_CONFIG": str(_config_with_tight_limit(work / "parley.yaml")),
           "PARLEY_WIDGET_ORIGINS": f"http://127.0.0.1:{host_port}", "PARLEY_ADMIN_TOKEN": ADMIN_TOKEN}
    for name in ("REDIS_URL", "DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)
    env.update(environ)
    log = (work / "server.log").open("wb")  # read it when a test fails
    process = subprocess.Popen([str(PARLEY), "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(server_url, process, timeout=90)  # a start on a busy CI machine may be slow
        yield Site(server_url=server_url, public_url=public_url, host_url=f"http://127.0.0.1:{host_port}/shop",
                   database=work / "var" / "parley.db", cable=cable, log=work / "server.log")
    finally:
        cable.close()
        process.terminate()
        process.wait(timeout=30)
        httpd.shutdown()
        log.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The embedded (offline) product: no keys, no servers."""
    with running_site(tmp_path_factory.mktemp("browser")) as running:
        yield running


@pytest.fixture(scope="session")
def llm_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, OpenAIStub]]:
    """The product answering through an OpenAI-compatible API (a loopback stub that streams)."""
    stub = OpenAIStub(latency=0.5).start()
    try:
        with running_site(tmp_path_factory.mktemp("browser-llm"), OPENAI_API_KEY="sk-browser-tests",
                          OPENAI_BASE_URL=stub.base_url) as running:
            yield running, stub
    finally:
        stub.stop()


@pytest.fixture(scope="session")
def browser(site: Site) -> Iterator[Browser]:
    # Depends on ``site`` so it closes first: open event streams would hold the server's shutdown.
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: run the tests with ./dev test (it installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile: its own localStorage, so its own conversation."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(10_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, site: Site) -> Page:
    site.cable.restore()  # whatever an earlier test left
    page = context.new_page()
    page.goto(site.host_url)
    return page


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT
