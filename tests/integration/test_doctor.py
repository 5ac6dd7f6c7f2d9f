"""``parley doctor`` run as an operator runs it, against loopback stand-ins for every dependency:
the Slack, Twilio and Telegram APIs (which check the credentials they are sent), the OpenAI stub,
Redis, a SQL database, and a real Parley behind the public URL."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from parley.webhooks.app import create_app
from tests.conftest import ROOT, make_settings
from tests.integration.redis_processes import RedisServer
from tests.integration.test_server import PARLEY, free_port
from tests.stubs.openai_stub import OpenAIStub
from tests.stubs.server import Call, StubServer, serving

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]

SLACK_TOKEN = "xoxb-fake_1111-2222-doctor0slack0token"
TWILIO_SID = "AC" + "d0c7" * 8
TWILIO_TOKEN = "f3a1c0ffee0doctor0auth0token0000"
TELEGRAM_TOKEN = "123456:doctor-telegram-token-AAAA"
OPENAI_KEY = "sk-doctor-0123456789"


def platform_apis(call: Call) -> tuple[int, dict[str, Any]]:
    """Slack, Twilio and Telegram under one server, each accepting only the right credentials."""
    if call.path == "/slack/api/auth.test":
        if call.headers.get("Authorization") == f"Bearer {SLACK_TOKEN}":
            return 200, {"ok": True, "user": "parley", "team": "Acme", "user_id": "U1", "team_id": "T1"}
        return 200, {"ok": False, "error": "invalid_auth"}
    if call.path == f"/twilio/2010-04-01/Accounts/{TWILIO_SID}.json":
        expected = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
        if call.headers.get("Authorization") == expected:
            return 200, {"sid": TWILIO_SID, "friendly_name": "Acme Support", "status": "active"}
        return 401, {"code": 20003, "message": "Authenticate", "status": 401,
                     "more_info": "https://www.twilio.com/docs/errors/20003"}
    if call.path == f"/telegram/bot{TELEGRAM_TOKEN}/getMe":
        return 200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "Parley",
                                            "username": "acme_parley_bot"}}
    if call.path.startswith("/telegram/bot"):
        return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
    return 404, {"error": "not found"}


@pytest.fixture
def apis() -> Iterator[StubServer]:
    with serving(platform_apis) as server:
        yield server


@pytest.fixture
def llm() -> Iterator[OpenAIStub]:
    stub = OpenAIStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def public_url(tmp_path: Path) -> Iterator[str]:
    """A real Parley app on loopback (it also migrates the SQLite database doctor then checks)."""
    app = create_app(make_settings(tmp_path), start_workers=False)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    app.extensions["parley"].close()


def doctor(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PARLEY_DATA_DIR": str(tmp_path / "var"),
           "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"), **environ}
    return subprocess.run([str(PARLEY), "doctor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def lines(output: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in output.splitlines():
        status, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        found[name] = (status, detail)
    return found


def test_a_healthy_deployment_passes(tmp_path: Path, apis: StubServer, llm: OpenAIStub, public_url: str) -> None:
    persistent = RedisServer(tmp_path)  # appendonly yes, as production must run it
    persistent.start()
    try:
        done = doctor(tmp_path, REDIS_URL=persistent.url, **healthy(public_url, llm, apis))
    finally:
        persistent.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    checks = lines(done.stdout)
    for name in ("config", "knowledge", "sql", "redis", "llm", "slack", "twilio", "telegram"):
        assert checks[name][0] == "ok", (name, checks[name])
    assert "append-only file on" in checks["redis"][1]
    assert "bot token accepted for parley in team Acme" in checks["slack"][1]
    assert "Acme Support" in checks["twilio"][1]
    assert "@acme_parley_bot" in checks["telegram"][1]
    assert llm.requests and llm.requests[-1]["max_tokens"] == 1
    # Plain HTTP on loopback: reachable, but flagged, since Twilio and Slack call https only.
    status, detail = checks["public url"]
    assert status == "warn" and f"computed on {public_url}/twilio/messages" in detail
    assert "not https" in detail and "does not reach" not in detail


def test_a_redis_that_keeps_nothing_on_disk_is_a_warning(tmp_path: Path, apis: StubServer, llm: OpenAIStub,
                                                         public_url: str) -> None:
    # This machine's Redis runs with appendonly no, as a cache would.
    done = doctor(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0", **healthy(public_url, llm, apis))
    assert done.returncode == 0, done.stdout + done.stderr
    status, detail = lines(done.stdout)["redis"]
    assert status == "warn" and "appendonly no" in detail and "answered again" in detail


def healthy(public_url: str, llm: OpenAIStub, apis: StubServer) -> dict[str, str]:
    return dict(PARLEY_PUBLIC_URL=public_url, OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=llm.base_url,
                SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_SIGNING_SECRET="s3cr3t", SLACK_HANDOFF_CHANNEL="C0REPS",
                SLACK_API_URL=f"{apis.url}/slack/api/",
                TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_API_URL=f"{apis.url}/twilio",
                TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, TELEGRAM_SECRET_TOKEN="tg-secret",
                TELEGRAM_API_URL=f"{apis.url}/telegram")


def test_every_broken_dependency_is_named_without_leaking_secrets(tmp_path: Path, apis: StubServer) -> None:
    done = doctor(tmp_path, REDIS_URL=f"redis://:redis-pass-9@127.0.0.1:{free_port()}/0",
                  OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1",
                  SLACK_BOT_TOKEN="xoxb-fake_wrong-token-0", SLACK_SIGNING_SECRET="s3cr3t",
                  SLACK_API_URL=f"{apis.url}/slack/api/",
                  TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN="wrong-twilio-token-0",
                  TWILIO_API_URL=f"{apis.url}/twilio",
                  TELEGRAM_BOT_TOKEN="999:wrong-telegram-token", TELEGRAM_SECRET_TOKEN="tg-secret",
                  TELEGRAM_API_URL=f"{apis.url}/telegram")
    assert done.returncode == 1
    checks = lines(done.stdout)
    assert checks["sql"][0] == "FAIL" and "run `parley db upgrade`" in checks["sql"][1]
    assert checks["redis"][0] == "FAIL"
    assert checks["llm"][0] == "FAIL" and "cannot be reached" in checks["llm"][1]
    assert checks["slack"] == ("FAIL", "auth.test refused the bot token: invalid_auth")
    assert checks["twilio"][0] == "FAIL" and "HTTP 401, code 20003" in checks["twilio"][1]
    assert checks["telegram"][0] == "FAIL"
    assert checks["public url"][0] == "FAIL"  # Twilio is on and nobody told Parley its public URL
    output = done.stdout + done.stderr
    for secret in ("redis-pass-9", OPENAI_KEY, "xoxb-fake_wrong-token-0", "wrong-twilio-token-0",
                   "wrong-telegram-token", "s3cr3t", "tg-secret"):
        assert secret not in output
