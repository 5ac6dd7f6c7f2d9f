"""A conversation log with labelled customer messages, made as people make one: customers ask
through the widget, a labeller labels them (`parley label suggest` / `parley label import`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path

from click.testing import CliRunner

from parley.cli import main
from parley.webhooks.app import create_app
from tests.conftest import make_settings

# What customers asked, and the article each needed.
ASKED = {
    "I can't remember my password, send me a new one to ana@example.com": "reset-password",
    "my password doesn't work anymore": "reset-password",
    "you took the money twice for one order": "double-charge",
    "there are two identical charges on my statement": "double-charge",
    "can I pay with apple pay": "payment-methods",
    "which cards do you take": "payment-methods",
    "where do I get the invoice for my order": "download-invoice",
    "I need a receipt for my company": "download-invoice",
    "I want to talk to a human please": "handoff",
}


def labelled_log(tmp_path: Path, env: Mapping[str, str], asked: Mapping[str, str] = ASKED) -> None:
    """``asked``'s questions in the log of the Parley ``env`` names, each labelled with its intent."""
    app = create_app(make_settings(tmp_path, **env))
    try:
        client = app.test_client()
        for text in asked:
            assert client.post("/widget/api/messages", json={"text": text}).status_code == 200
    finally:
        app.extensions["parley"].close()
    runner = CliRunner(mix_stderr=False)
    suggested = runner.invoke(main, ["label", "suggest", "--limit", "50"], env=dict(env))
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["message_id", "intent"])
        writer.writerows([row["message_id"], asked[row["text"]]]
                         for row in csv.DictReader(io.StringIO(suggested.output)))
    imported = runner.invoke(main, ["label", "import", str(labels)], env=dict(env))
    assert f"stored {len(asked)} labels" in imported.output, imported.stderr
