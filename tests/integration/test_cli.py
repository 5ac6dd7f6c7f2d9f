"""The ``parley`` console command as an admin uses it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

PARLEY = Path(sys.executable).with_name("parley")


def run(*args: str, stdin: str = "", **environ: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **environ}
    return subprocess.run([str(PARLEY), *args], cwd=ROOT, env=env, input=stdin, text=True,
                          capture_output=True, timeout=60)


def test_check_config_accepts_the_sample(tmp_path: Path) -> None:
    result = run("check-config", PARLEY_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "configuration OK" in result.stdout
    assert "46 knowledge articles" in result.stdout


def test_check_config_names_file_key_and_reason(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  prot: 8000\n", encoding="utf-8")
    result = run("check-config", PARLEY_CONFIG=str(config))
    assert result.returncode != 0
    assert f"{config}: server.prot: unknown key (check the spelling)" in result.stderr


def test_check_config_reports_a_missing_knowledge_directory(tmp_path: Path) -> None:
    result = run("check-config", PARLEY_KNOWLEDGE=str(tmp_path / "nowhere"))
    assert result.returncode != 0
    assert "knowledge.path" in result.stderr and "is not a directory" in result.stderr


def test_chat_holds_a_terminal_conversation(tmp_path: Path) -> None:
    result = run("chat", stdin="hello\nHow do I reset my password?\nquit\n", PARLEY_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Hi! I'm the Acme assistant" in result.stdout
    assert "Forgot password" in result.stdout
    assert ("(source: How do I reset my password? [reset-password] "
            "https://help.acme.example/account/reset-password)") in result.stdout
    assert result.stdout.rstrip().endswith("bye")


def test_chat_asks_for_a_person_and_the_bot_goes_on_answering(tmp_path: Path) -> None:
    # Through the pipeline like a webhook's message: the conversation is logged before the handoff
    # event that refers to it (asking for a person used to end in an IntegrityError traceback).
    result = run("chat", stdin="I want to talk to a person\nHow do I reset my password?\nquit\n",
                 PARLEY_DATA_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "error:" not in result.stderr
    handoff, answer = result.stdout.split("bot> ")[1:3]
    # No reps' channel in the sample configuration: the customer is told no person answers here.
    assert handoff.startswith("Sorry, I can't put you through to a person from this chat")
    assert "Forgot password" in answer and result.stdout.rstrip().endswith("bye")
    with sqlite3.connect(tmp_path / "parley.db") as database:
        events = database.execute("SELECT c.channel, e.kind FROM handoffevent e "
                                  "JOIN conversation c ON c.id = e.conversation_id").fetchall()
        logged = database.execute("SELECT direction, text FROM message ORDER BY id").fetchall()
    assert events == [("terminal", "requested")]
    assert [direction for direction, _ in logged] == ["in", "out", "in", "out"]
    assert logged[0] == ("in", "I want to talk to a person")
