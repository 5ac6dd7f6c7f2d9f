"""``/metrics``: what Prometheus scrapes after real traffic through the app."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from parley.core.envelope import AnswerMeta, Reply
from parley.errors import Unavailable
from parley.metrics import Metrics, exposition
from parley.stores.redis import connect
from parley.stores.redis_inbox import RedisInbox
from parley.webhooks.app import create_app
from tests.conftest import make_envelope, make_settings
from tests.integration.redis_processes import (
    REDIS_URL, Parley, delete_prefix, parley_env, wait_until, write_config,
)
from tests.integration.test_server import free_port

ADMIN_TOKEN = "metrics-admin-token-5f1c"


def scrape(client: FlaskClient, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for sample in family.samples}


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path))
    yield app
    app.extensions["parley"].close()


def test_a_widget_message_is_counted_in_and_out_with_its_latencies(embedded: Flask) -> None:
    client = embedded.test_client()
    assert client.post("/widget/api/messages", json={"text": "How do I reset my password?"}).status_code == 200
    assert client.post("/widget/api/messages", json={"text": "   "}).status_code == 400
    widget = (("channel", "widget"),)
    # The worker counts an answer, and takes it off the inbox, a moment after the waiting request got it.
    def settled(samples: dict) -> bool:
        return ("parley_messages_out_total", widget) in samples and samples.get(("parley_inbox_depth", ())) == 0

    deadline = time.monotonic() + 10
    while not settled(samples := scrape(client)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert samples[("parley_messages_in_total", widget)] == 1
    assert samples[("parley_messages_out_total", widget)] == 1
    assert samples[("parley_ack_seconds_count", widget)] == 1
    assert samples[("parley_answer_seconds_count", widget)] == 1
    assert samples[("parley_answers_total", (("cached", "false"), ("engine", "offline")))] == 1
    assert samples[("parley_errors_total", (("kind", "MalformedPayload"),))] == 1
    assert samples[("parley_inbox_depth", ())] == 0
    assert samples[("parley_dead_letters", ())] == 0


def test_metrics_need_the_admin_token_when_one_is_set(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, PARLEY_ADMIN_TOKEN=ADMIN_TOKEN), start_workers=False)
    client = app.test_client()
    try:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.get_json() == {"error": "invalid request"}
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(client, Authorization=f"Bearer {ADMIN_TOKEN}")
        assert samples[("parley_errors_total", (("kind", "InvalidSignature"),))] == 2
    finally:
        app.extensions["parley"].close()


def test_llm_tokens_cache_hits_and_handoffs_are_counted() -> None:
    metrics = Metrics.create()
    question = make_envelope("What is your returns policy?", channel="slack")
    llm = Reply(conversation_id="conv-1", channel="slack", text="30 days.",
                meta=AnswerMeta(engine="llm", prompt_tokens=120, completion_tokens=30))
    cached = Reply(conversation_id="conv-1", channel="slack", text="30 days.",
                   meta=AnswerMeta(engine="llm", cached=True))
    metrics.answered(question, [llm], now=question.timestamp + 2.5)
    metrics.answered(question, [cached], now=question.timestamp + 0.1)
    claim = make_envelope("", role="agent", action="claim")
    metrics.answered(claim, [])
    metrics.answered(make_envelope("", role="agent", action="resolve"), [])
    metrics.answered(make_envelope("a person please"), [Reply(conversation_id="conv-1", channel="test",
                     text="Connecting you.", meta=AnswerMeta(intent="handoff_request"))])
    assert value_of(metrics, "parley_handoffs_total", {"event": "opened"}) == 1
    value = metrics.registry.get_sample_value
    assert value("parley_llm_tokens_total", {"kind": "prompt"}) == 120
    assert value("parley_llm_tokens_total", {"kind": "completion"}) == 30
    assert value("parley_answers_total", {"engine": "llm", "cached": "true"}) == 1
    assert value("parley_answers_total", {"engine": "llm", "cached": "false"}) == 1
    assert value("parley_answer_seconds_sum", {"channel": "slack"}) == pytest.approx(2.6)
    assert value("parley_answer_seconds_bucket", {"channel": "slack", "le": "0.25"}) == 1
    assert value("parley_handoffs_total", {"event": "claimed"}) == 1
    assert value("parley_handoffs_total", {"event": "resolved"}) == 1
    assert value("parley_messages_out_total", {"channel": "slack"}) == 2
    assert value("parley_messages_out_total", {"channel": "test"}) == 1


def value_of(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_every_metric_the_runbook_names_is_exported() -> None:
    runbook = (Path(__file__).resolve().parents[2] / "deployments" / "README.md").read_text()
    exported = Metrics.names()
    expected = {"parley_messages_in_total", "parley_messages_out_total", "parley_ack_seconds",
                "parley_answer_seconds", "parley_answers_total", "parley_llm_tokens_total",
                "parley_handoffs_total", "parley_inbox_depth", "parley_dead_letters", "parley_errors_total",
                "parley_messages_duplicate_total", "parley_messages_in_flight", "parley_worker_capacity"}
    assert expected == exported
    for name in exported:
        assert f"`{name}" in runbook, f"deployments/README.md does not explain {name}"


def test_a_scrape_still_works_while_the_inbox_is_unreachable(embedded: Flask) -> None:
    nowhere = RedisInbox(connect(f"redis://127.0.0.1:{free_port()}/0"), prefix="parley:",
                         dedupe_ttl=60, visibility_timeout=2, max_attempts=3)
    with pytest.raises(Unavailable):
        nowhere.status()
    services = embedded.extensions["parley"]
    services.metrics.failed("Unavailable")
    body, _ = exposition(services.metrics, nowhere)
    text = body.decode()
    assert 'parley_errors_total{kind="Unavailable"} 1.0' in text
    assert "parley_inbox_depth" not in text


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_a_split_out_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    prefix = f"parley-wmetrics-{uuid.uuid4().hex[:8]}:"
    port = free_port()
    env = parley_env(write_config(tmp_path, key_prefix=prefix), tmp_path / "var", REDIS_URL=REDIS_URL,
                     PARLEY_METRICS_PORT=str(port))
    worker = Parley(["worker"], env, tmp_path / "worker.log")
    try:
        def scraped() -> str | None:
            try:
                return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except requests.ConnectionError:
                return None
        wait_until(lambda: scraped() is not None, timeout=30, what=f"worker metrics:\n{worker.output()}")
        text = scraped() or ""
        assert "parley_inbox_depth 0.0" in text and "parley_dead_letters 0.0" in text
        assert "# TYPE parley_answer_seconds histogram" in text
    finally:
        worker.stop()
        delete_prefix(redis.Redis.from_url(REDIS_URL), prefix)
