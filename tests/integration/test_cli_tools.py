"""The ``parley`` command as an operator scripts it: output on stdout, logs and progress on stderr,
read-only commands that never migrate, errors in one line, ``--version``."""

from __future__ import annotations

import fcntl
import importlib.metadata
import json
import os
import pty
import sqlite3
import struct
import subprocess
import sys
import termios
from pathlib import Path

import psycopg
import pytest

from parley.stores.memory_inbox import MemoryInbox
from parley.stores.schema import current_head
from parley.stores.sqlite_journal import InboxJournal, open_journal_database
from tests.conftest import CONFIG, POSTGRES_ADMIN, ROOT, make_envelope
from tests.integration.data_support import fresh_database

PARLEY = Path(sys.executable).with_name("parley")
PARAPHRASES = str(ROOT / "tests" / "data" / "paraphrases.csv")
READ_ONLY = [("export",), ("label", "suggest"), ("models", "list", "--json"), ("eval", PARAPHRASES, "--json")]


def run(*args: str, env: dict[str, str], stderr: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PARLEY), *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                          stderr=stderr if stderr is not None else subprocess.PIPE, timeout=120)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A clean environment, as a cron job has: the sample YAML, a data dir of the test's own, and
    the run's cache of the sample's passage vectors (a job beside the bot shares the bot's cache;
    without it every command would embed the knowledge base again)."""
    return {"PATH": str(PARLEY.parent), "HOME": str(tmp_path), "PARLEY_CONFIG": str(CONFIG),
            "PARLEY_DATA_DIR": str(tmp_path / "var"), "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
            "PARLEY_CACHE_DIR": os.environ["PARLEY_CACHE_DIR"]}


def test_version_is_the_installed_distributions() -> None:
    result = subprocess.run([str(PARLEY), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout == f"parley {importlib.metadata.version('parley')}\n"


def test_read_only_commands_refuse_a_schema_behind_and_leave_it_as_it_was(env: dict[str, str]) -> None:
    older = run("db", "upgrade", "0004", env=env)
    assert older.returncode == 0, older.stderr
    for command in READ_ONLY:
        result = run(*command, env=env)
        assert result.returncode == 1, (command, result.stdout)
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert f"the database is at revision 0004 and this Parley needs {current_head()}: run `parley db upgrade`" \
            in result.stderr, command
    assert run("db", "current", env=env).stdout.strip() == "0004"  # nobody migrated it


def test_read_only_commands_do_not_create_a_missing_log(env: dict[str, str], tmp_path: Path) -> None:
    result = run("export", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"no conversation log at {tmp_path / 'var' / 'parley.db'} yet" in result.stderr
    assert not (tmp_path / "var" / "parley.db").exists()
    # Retrieval alone needs no log at all.
    assert json.loads(run("eval", PARAPHRASES, "--no-model", "--json", env=env).stdout)["questions"] == 49


@pytest.mark.postgres
def test_read_only_commands_work_with_read_only_credentials(env: dict[str, str], tmp_path: Path) -> None:
    # Production gives the data scientist's job SELECT and nothing else.
    with fresh_database("postgres", tmp_path) as url:
        assert run("db", "upgrade", env={**env, "DATABASE_URL": url}).returncode == 0
        role, database = f"reader_{tmp_path.name[-12:].replace('-', '_')}", url.rsplit("/", 1)[1]
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            with psycopg.connect(f"host=127.0.0.1 user=postgres dbname={database}", autocommit=True) as owner:
                owner.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
            reader = {**env, "DATABASE_URL": url.replace("postgres@", f"{role}@")}
            for command in READ_ONLY[:3]:
                result = run(*command, env=reader)
                assert result.returncode == 0, (command, result.stderr)
            assert json.loads(run(*READ_ONLY[3], env=reader).stdout)["questions"] == 49
            denied = run("db", "downgrade", "0004", env=reader)  # altering is refused, as it should be
            assert denied.returncode != 0
        finally:
            with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_json_on_stdout_and_every_log_line_on_stderr(env: dict[str, str]) -> None:
    # At DEBUG the scratch log's migrations speak (alembic, through the standard library's
    # logging): every line on stderr, none in the document.
    result = run("eval", PARAPHRASES, "--no-model", "--json", env={**env, "PARLEY_LOG_LEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["questions"] == 49
    assert "Running upgrade 0004 -> 0005" in result.stderr and "[alembic.runtime.migration]" in result.stderr
    assert "questions/s" not in result.stderr  # a pipe, not a terminal: no progress bar


def test_long_work_shows_a_progress_bar_on_a_terminal(env: dict[str, str]) -> None:
    controller, terminal = pty.openpty()
    # A terminal of 100 columns, as a person's: a new pseudo-terminal has none (tqdm draws nothing).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        result = run("eval", PARAPHRASES, "--no-model", "--json", env=env, stderr=terminal)
        os.close(terminal)
        shown = _read_all(controller)
    finally:
        os.close(controller)
    assert result.returncode == 0
    assert json.loads(result.stdout)["questions"] == 49
    assert "| 0/49 [00:00<?, ? questions/s]" in shown  # drawn as it starts (then every 0.1 s)


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the terminal's other end is closed: all was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def test_since_and_until_say_what_they_accept(env: dict[str, str]) -> None:
    for command in (("export",), ("train",)):
        shown = " ".join(run(*command, "--help", env=env).stdout.split())
        assert "--since [%Y-%m-%d|%Y-%m-%dT%H:%M:%S|%Y-%m-%d %H:%M:%S]" in shown
        assert "a date (2026-01-31) or a moment (2026-01-31T14:30:00), in UTC" in shown


def test_yaml_errors_name_the_file_line_and_column(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "parley.yaml"
    config.write_text("server:\n  port: 8000\n   host: x\n", encoding="utf-8")
    result = run("check-config", env={**env, "PARLEY_CONFIG": str(config)})
    assert result.returncode == 1
    assert result.stderr == f"Error: {config}: line 3, column 8: not valid YAML: mapping values are not allowed here\n"

    knowledge = tmp_path / "kb"
    knowledge.mkdir()
    (knowledge / "refunds.md").write_text("---\ntitle: Refunds\nquestions: [a, b\n---\nWithin 30 days.\n",
                                          encoding="utf-8")
    result = run("check-config", env={**env, "PARLEY_KNOWLEDGE": str(knowledge)})
    assert result.returncode == 1 and "<unicode string>" not in result.stderr
    assert f"{knowledge / 'refunds.md'}: line 4, column 1: not valid YAML:" in result.stderr
    assert "while parsing a flow sequence from line 3, column 12" in result.stderr


def test_inbox_status_reads_the_embedded_inbox_from_its_file(env: dict[str, str], tmp_path: Path) -> None:
    # The embedded inbox as `parley serve` leaves it on disk: two messages waiting, one dead letter.
    journal = open_journal_database(tmp_path / "var" / "parley.db")
    inbox = MemoryInbox(dedupe_ttl=600, max_attempts=1, journal=InboxJournal(journal))
    inbox.put(make_envelope("first", conversation_id="conv-a", message_id="m-dead"))
    inbox.put(make_envelope("second", conversation_id="conv-a", message_id="m-2"))
    inbox.put(make_envelope("third", conversation_id="conv-b", message_id="m-3"))
    [claim] = inbox.claim(1, timeout=0.1)
    delivery = inbox.next(claim)
    assert delivery is not None and inbox.fail(delivery, "UpstreamError: the LLM said 500") is True

    result = run("inbox", "status", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"embedded inbox ({tmp_path / 'var' / 'parley.db'}): queued: 2  conversations: 2  "
                        "started (being answered or retrying): 0  dead letters: 1")
    assert "conversation conv-a  message m-dead  attempts 1  reason: UpstreamError: the LLM said 500" in lines[1]
    with sqlite3.connect(tmp_path / "var" / "parley.db") as database:  # looking changed nothing
        assert database.execute("SELECT COUNT(*) FROM embedded_inbox").fetchone() == (2,)

    refused = run("inbox", "replay", "1", env=env)
    assert refused.returncode == 1 and "this command needs REDIS_URL" in refused.stderr


def test_init_scaffolds_a_bot_that_answers_from_its_first_article(env: dict[str, str], tmp_path: Path) -> None:
    del env["PARLEY_KNOWLEDGE"]
    made = run("init", str(tmp_path / "mybot"), "--title", "Acme: Help", env=env)
    assert made.returncode == 0, made.stderr
    config = tmp_path / "mybot" / "parley.yaml"
    assert f"export PARLEY_CONFIG={config}" in made.stdout
    elsewhere = tmp_path / "elsewhere"  # the YAML's relative knowledge.path is read beside it
    elsewhere.mkdir()
    chat = subprocess.run([str(PARLEY), "chat"], cwd=elsewhere, env={**env, "PARLEY_CONFIG": str(config)},
                          input="where do I begin\nquit\n", text=True, capture_output=True, timeout=120)
    assert chat.returncode == 0, chat.stderr
    assert "(source: How do I get started? [getting-started])" in chat.stdout
    again = run("init", str(tmp_path / "mybot"), env=env)
    assert again.returncode == 1 and f"{config} already exists: nothing was written" in again.stderr
