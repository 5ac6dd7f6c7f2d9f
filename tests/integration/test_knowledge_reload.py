"""Articles saved, added or removed while Parley serves apply without a restart, in every process."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import yaml
from flask import Flask
from flask.testing import FlaskClient
from structlog.testing import capture_logs

from parley.webhooks.app import create_app
from tests.conftest import CONFIG, ROOT, make_settings
from tests.integration.knowledge_support import PARROT, sample_copy
from tests.integration.llm_support import llm_settings, system_contents
from tests.integration.test_server import PARLEY, free_port, wait_until_ready
from tests.stubs.openai_stub import OpenAIStub

TOKEN = "admin-token-for-tests"
QUESTION = "can I come to the shop with my parrot"
BROKEN = "---\nid: [unclosed\ntitle: Broken\n---\nA body.\n"


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    return sample_copy(tmp_path)


@pytest.fixture
def app(tmp_path: Path, knowledge: Path) -> Iterator[Flask]:
    settings = make_settings(tmp_path, PARLEY_KNOWLEDGE=str(knowledge), PARLEY_ADMIN_TOKEN=TOKEN)
    settings = settings.model_copy(update={"knowledge": settings.knowledge.model_copy(update={"reload_seconds": 0.2})})
    app = create_app(settings)
    yield app
    app.extensions["parley"].close()


def ask(client: FlaskClient, text: str) -> dict[str, object]:
    response = client.post("/widget/api/messages", json={"text": text})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["replies"][0]


def source_of(reply: dict[str, object]) -> str | None:
    sources = reply["sources"]
    assert isinstance(sources, list)
    return sources[0]["id"] if sources else None


def eventually(condition: Callable[[], bool], *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the change never applied"
        time.sleep(0.2)


def test_a_saved_article_answers_without_a_restart(app: Flask, knowledge: Path) -> None:
    client = app.test_client()
    assert source_of(ask(client, QUESTION)) != "parrot-care"
    (knowledge / "parrot-care.md").write_text(PARROT, encoding="utf-8")
    eventually(lambda: source_of(ask(client, QUESTION)) == "parrot-care")
    assert "Parrots are welcome" in str(ask(client, QUESTION)["text"])
    assert client.get("/readyz").get_json()["knowledge_articles"] == 47

    (knowledge / "parrot-care.md").unlink()  # removed: never cited again
    eventually(lambda: source_of(ask(client, QUESTION)) != "parrot-care")
    assert client.get("/readyz").get_json()["knowledge_articles"] == 46


def test_a_broken_article_is_refused_and_the_last_good_knowledge_answers(app: Flask, knowledge: Path) -> None:
    client = app.test_client()
    (knowledge / "broken.md").write_text(BROKEN, encoding="utf-8")
    (knowledge / "parrot-care.md").write_text(PARROT, encoding="utf-8")
    with capture_logs() as logged:  # the next questions find the change; each is answered meanwhile
        eventually(lambda: source_of(ask(client, "How do I reset my password?")) == "reset-password"
                   and any(line["event"] == "knowledge_reload_refused" for line in logged))
    [refused] = [line for line in logged if line["event"] == "knowledge_reload_refused"]
    assert str(knowledge / "broken.md") in refused["error"]
    assert source_of(ask(client, QUESTION)) != "parrot-care"  # nothing of the refused load

    (knowledge / "broken.md").unlink()  # mended: the next look loads it all
    eventually(lambda: source_of(ask(client, QUESTION)) == "parrot-care")


def test_an_admin_reloads_now_and_sees_what_loaded(app: Flask, knowledge: Path) -> None:
    client = app.test_client()
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    (knowledge / "parrot-care.md").write_text(PARROT, encoding="utf-8")
    response = client.post("/admin/knowledge/reload", headers=bearer)
    assert response.status_code == 200 and response.get_json()["articles"] == 47
    assert source_of(ask(client, QUESTION)) == "parrot-care"

    (knowledge / "broken.md").write_text(BROKEN, encoding="utf-8")
    refused = client.post("/admin/knowledge/reload", headers=bearer)
    assert refused.status_code == 422
    assert "broken.md" in refused.get_json()["reason"] and "Traceback" not in refused.get_data(as_text=True)
    assert client.get("/readyz").get_json()["knowledge_articles"] == 47
    assert client.post("/admin/knowledge/reload").status_code == 401


def test_parley_serve_picks_up_a_new_article_while_it_serves(tmp_path: Path, knowledge: Path) -> None:
    # The real server: gunicorn's gevent worker, where the reload's heavy part runs off the hub.
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    config["knowledge"]["reload_seconds"] = 0.5
    (tmp_path / "parley.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PARLEY_DATA_DIR": str(tmp_path / "var"),
           "PARLEY_CONFIG": str(tmp_path / "parley.yaml"), "PARLEY_KNOWLEDGE": str(knowledge)}
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen([str(PARLEY), "serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)

        def answered_from_parrot_care() -> bool:
            reply = requests.post(f"{url}/widget/api/messages", json={"text": QUESTION}, timeout=30).json()
            return source_of(reply["replies"][0]) == "parrot-care"

        assert not answered_from_parrot_care()
        (knowledge / "parrot-care.md").write_text(PARROT, encoding="utf-8")
        eventually(answered_from_parrot_care)
        assert requests.get(f"{url}/readyz", timeout=5).json()["knowledge_articles"] == 47
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_with_an_llm_a_reload_answers_from_the_new_articles_over_the_same_connection(
        tmp_path: Path, knowledge: Path) -> None:
    stub = OpenAIStub().start()
    settings = llm_settings(tmp_path, stub, environ={"PARLEY_KNOWLEDGE": str(knowledge), "PARLEY_ADMIN_TOKEN": TOKEN})
    settings = settings.model_copy(update={"knowledge": settings.knowledge.model_copy(update={"reload_seconds": 0})})
    app = create_app(settings)
    client, bearer = app.test_client(), {"Authorization": f"Bearer {TOKEN}"}
    services = app.extensions["parley"]
    first = services.engine
    try:
        for number in range(3):
            (knowledge / f"parrot-care-{number}.md").write_text(
                PARROT.replace("id: parrot-care", f"id: parrot-care-{number}"), encoding="utf-8")
            assert client.post("/admin/knowledge/reload", headers=bearer).get_json()["articles"] == 47 + number
            ask(client, f"{QUESTION} ({number})")
            assert "Parrots are welcome" in system_contents(stub.requests[-1])  # the new article grounds it
            # Answered through the process's one client pool and circuit breaker: a new pool per
            # reload kept the old one's connections open for good (3 reloads, 3 connections).
            assert services.engine is not first
            assert services.engine.clients is first.clients and services.engine.breaker is first.breaker
    finally:
        app.extensions["parley"].close()
        stub.stop()
