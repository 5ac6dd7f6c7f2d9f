"""The schema is made and changed only by the Alembic migrations, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from parley.cli import main
from parley.stores import schema
from parley.stores.sql import open_database
from tests.conftest import CONFIG, make_settings
from tests.integration.data_support import environ_for, fresh_database

DATA_TABLES = {"conversation", "message", "handoffevent", "feedback", "label", "modelversion"}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with fresh_database(request.param, tmp_path) as url:
        engine = open_database(url)
        yield engine
        engine.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_makes_exactly_the_tables_the_code_declares(engine: Engine) -> None:
    schema.upgrade(engine)
    assert DATA_TABLES <= tables(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                       SQLModel.metadata)
    # A column or index added to the models without a migration shows up here.
    assert differences == []
    assert "ix_message_channel_created_at" in {ix["name"] for ix in inspect(engine).get_indexes("message")}


def test_downgrade_to_base_and_up_again(engine: Engine) -> None:
    schema.upgrade(engine)
    schema.downgrade(engine, "0001")
    assert tables(engine) & DATA_TABLES == {"conversation", "message"}
    assert "model" not in {column["name"] for column in inspect(engine).get_columns("message")}
    schema.downgrade(engine, "base")
    assert tables(engine) - {"alembic_version"} == set()
    schema.upgrade(engine)
    assert DATA_TABLES <= tables(engine)


def test_a_database_made_before_migrations_is_upgraded_in_place(engine: Engine) -> None:
    from parley.stores.sql import SqlConversationLog

    schema.upgrade(engine, schema.BASELINE)
    with engine.begin() as connection:  # as if create_all had made it: no Alembic bookkeeping
        connection.exec_driver_sql("DROP TABLE alembic_version")
        connection.execute(text(
            "INSERT INTO conversation (id, channel, customer, started_at, updated_at) "
            "VALUES ('conv-1', 'test', 'c', :now, :now)"), {"now": datetime(2026, 1, 1)})
        connection.execute(text(
            "INSERT INTO message (public_id, conversation_id, direction, channel, text, created_at, "
            "sources, quick_replies, cached) VALUES ('test:1', 'conv-1', 'in', 'test', "
            "'kept across the upgrade', :now, '[]', '[]', false)"), {"now": datetime(2026, 1, 1)})
    log = SqlConversationLog(engine)
    log.create_schema()
    assert schema.current(engine) == schema.current_head()
    assert [m.text for m in log.transcript("conv-1", "test") or []] == ["kept across the upgrade"]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_parley_db_upgrade_and_downgrade(kind: str, tmp_path: Path) -> None:
    with fresh_database(kind, tmp_path) as url:
        env = {"PARLEY_DATA_DIR": str(tmp_path / "var"), **environ_for(url)}
        runner = CliRunner()
        upgraded = runner.invoke(main, ["--config", str(CONFIG), "db", "upgrade"], env=env)
        assert upgraded.exit_code == 0, upgraded.output
        assert f"database at revision {schema.current_head()}" in upgraded.output
        downgraded = runner.invoke(main, ["--config", str(CONFIG), "db", "downgrade", "base"], env=env)
        assert downgraded.exit_code == 0, downgraded.output
        assert "base (empty)" in downgraded.output
        current = runner.invoke(main, ["--config", str(CONFIG), "db", "current"], env=env)
        assert current.output.strip() == "base (empty)"


def test_db_upgrade_sql_prints_the_ddl_without_touching_the_database(tmp_path: Path) -> None:
    env = {"PARLEY_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["--config", str(CONFIG), "db", "upgrade", "--sql"], env=env)
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE feedback" in result.output
    assert not (tmp_path / "var" / "parley.db").exists() or not tables(
        open_database(make_settings(tmp_path).database_url))


def test_posts_to_the_reps_thread_logged_before_0005_replay_as_typed_desk_posts(engine: Engine) -> None:
    from parley.core.desk import DeskPost
    from parley.core.envelope import Envelope
    from parley.stores.sql import SqlConversationLog

    schema.upgrade(engine, "0004")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO conversation (id, channel, customer, started_at, updated_at) "
            "VALUES ('c1', 'sms', '+1555', :now, :now)"), {"now": datetime(2026, 1, 1)})
        connection.execute(text(
            "INSERT INTO message (public_id, conversation_id, direction, channel, text, created_at, in_reply_to, "
            "sources, quick_replies, cached, route) VALUES ('r1-1', 'c1', 'out', 'desk', 'needs a person', :now, "
            "'sms:SM1', '[]', '[]', false, :route)"),
            {"now": datetime(2026, 1, 1), "route": '{"handoff": "1", "kind": "open", "customer_channel": "sms"}'})
    schema.upgrade(engine)
    envelope = Envelope(channel="sms", conversation_id="c1", message_id="SM1", sender="+1555", text="a person")
    [replayed] = SqlConversationLog(engine).replies_to(envelope) or []
    assert (dict(replayed.route), replayed.desk) == ({}, DeskPost(kind="open", handoff=1, customer_channel="sms"))
    schema.downgrade(engine, "0004")  # and back: the old code finds its route keys again
    with engine.connect() as connection:
        route = connection.execute(text("SELECT route FROM message WHERE public_id = 'r1-1'")).scalar_one()
    assert json.loads(route) == {"handoff": "1", "kind": "open", "customer_channel": "sms"}


def _upgrade_in_another_process(url: str) -> None:
    schema.upgrade(open_database(url))


def test_processes_starting_together_on_a_fresh_sqlite_file_all_start(tmp_path: Path) -> None:
    # gunicorn workers (or `parley worker`s) each upgrade the schema at start, at the same moment.
    url = f"sqlite:///{tmp_path / 'parley.db'}"
    processes = [multiprocessing.get_context("spawn").Process(target=_upgrade_in_another_process, args=(url,))
                 for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0, 0, 0]
    assert schema.current(open_database(url)) == schema.current_head()
