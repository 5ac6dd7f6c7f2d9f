"""Shared fixtures: settings on a temporary data dir, the app, a transcript-style bot, databases."""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from parley.core.envelope import Envelope, Reply
from parley.core.knowledge import KnowledgeIndex
from parley.settings import Settings, load_settings
from parley.stores.embeddings import OnnxEmbedder, load_embedder
from parley.stores.knowledge import load_index
from parley.webhooks.app import create_app

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "parley.yaml"
POSTGRES_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def make_settings(tmp_path: Path, **environ: str) -> Settings:
    """The sample YAML, with the data dir in ``tmp_path`` and the given environment."""
    env = {"PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
           **environ}
    return load_settings(CONFIG, environ=env)


def make_envelope(text: str, **overrides: object) -> Envelope:
    """A customer message with sensible defaults (PTB's ``make_message``)."""
    fields: dict[str, object] = {"channel": "test", "conversation_id": "conv-1",
                                 "message_id": uuid.uuid4().hex, "sender": "customer-1", "text": text}
    fields.update(overrides)
    return Envelope(**fields)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def _shared_vector_cache(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> None:
    """Every `parley serve` a test starts reads the sample knowledge base's passage vectors (and
    its own model) from one cache (each has a fresh data dir of its own): the sample is embedded
    once per run, here, as a first start would, and this process's own indexes reuse the vectors.

    Under pytest-xdist the workers share the run's directory (their own temp dirs' parent): the
    first to take the lock embeds, the others wait and read its cache."""
    if worker_id == "master":
        cache = tmp_path_factory.mktemp("vectors")
    else:
        cache = tmp_path_factory.getbasetemp().parent / "vectors"
        cache.mkdir(exist_ok=True)
    with (cache.parent / "vectors.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        load_index(ROOT / "config" / "knowledge", embedder=load_embedder(None), cache_dir=cache)
    os.environ["PARLEY_CACHE_DIR"] = str(cache)


@pytest.fixture(scope="session")
def embedder() -> OnnxEmbedder:
    """The default sentence-embedding model, loaded once for the whole run (as a server does)."""
    return load_embedder(None)


@pytest.fixture(scope="session")
def hybrid_index(embedder: OnnxEmbedder) -> KnowledgeIndex:
    """The sample knowledge base, indexed as the embedded default indexes it (TF-IDF + embeddings)."""
    return load_index(ROOT / "config" / "knowledge", embedder=embedder)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test run's own, dropped afterwards."""
    name = f"parley_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Environment selecting each conversation-log backend in turn."""
    if request.param == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_url")
    # Each test gets its own schema-free slate by dropping our tables first.
    from sqlmodel import SQLModel

    from parley.stores.sql import open_database
    engine = open_database(url.replace("postgresql://", "postgresql+psycopg://"))
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:  # the migrations' bookkeeping, so the app re-creates all
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    engine.dispose()
    return {"DATABASE_URL": url}


@pytest.fixture
def settings(tmp_path: Path, database: dict[str, str]) -> Settings:
    return make_settings(tmp_path, **database)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["parley"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Bot:
    """Transcript-style access to the bot (errbot's ``testbot``), through the pipeline every
    channel's messages take: a collecting channel named like ``make_envelope``'s is its customer."""

    def __init__(self, settings: Settings) -> None:
        from parley.channels.direct import CollectingChannel
        from parley.wiring import build_services
        self.channel = CollectingChannel(make_envelope("").channel)
        self.services = build_services(settings, direct=(self.channel,))
        self.conversation_id = f"conv-{uuid.uuid4().hex[:8]}"

    def ask(self, text: str) -> Reply:
        envelope = make_envelope(text, conversation_id=self.conversation_id)
        replies = self.channel.ask(self.services.pipeline.process, envelope)
        assert len(replies) == 1
        return replies[0]


@pytest.fixture
def bot(tmp_path: Path) -> Bot:
    return Bot(make_settings(tmp_path))
