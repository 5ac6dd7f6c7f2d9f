"""``parley train --from EXPORT``: a model learned from an export file names the file's SHA-256 in
the registry (``models list``), in its record (``--record``), and ``eval --model-record`` reads it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from parley.cli import main
from tests.conftest import CONFIG, ROOT
from tests.integration.labelled_support import ASKED, labelled_log


class Shell:
    def __init__(self, tmp_path: Path) -> None:
        self.env = {"PARLEY_CONFIG": str(CONFIG), "PARLEY_DATA_DIR": str(tmp_path / "var"),
                    "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
                    "PARLEY_PSEUDONYM_KEY": "pseudonyms"}

    def run(self, *args: str) -> Result:
        return CliRunner(mix_stderr=False).invoke(main, list(args), env=self.env)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (result.output, result.stderr)
        return result.output


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    shell = Shell(tmp_path)
    labelled_log(tmp_path, shell.env)
    return shell


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_model_learned_from_an_export_records_the_files_hash_in_every_format(
        shell: Shell, tmp_path: Path) -> None:
    exports = {fmt: tmp_path / "snapshots" / f"log.{fmt}" for fmt in ("jsonl", "csv", "parquet")}
    for fmt, path in exports.items():
        shell.ok("export", "--format", fmt, "-o", str(path))

    record = tmp_path / "model.json"
    trained = shell.ok("train", "--from", str(exports["jsonl"]), "--kind", "tfidf-logreg",
                       "--record", str(record))
    assert f"learning from {exports['jsonl']} (sha256 {_sha256(exports['jsonl'])})" in trained
    assert f"({len(ASKED)} labelled messages)" in trained
    version = trained.split("saved model ")[1].split()[0]
    recorded = json.loads(record.read_text())
    assert recorded["version"] == version and recorded["export_sha256"] == _sha256(exports["jsonl"])
    assert recorded["data_from"] and recorded["data_until"]  # the labelled messages' range

    # The same labelled messages in another format: the same model, still naming the first file.
    for fmt in ("csv", "parquet"):
        again = shell.ok("train", "--from", str(exports[fmt]), "--kind", "tfidf-logreg",
                         "--record", str(record))
        assert f"saved model {version}" in again and f"({len(ASKED)} labelled messages)" in again
        earlier = _sha256(exports["jsonl"])
        assert f"it learned the same from an earlier export (sha256 {earlier})" in again
        assert json.loads(record.read_text())["export_sha256"] == _sha256(exports["jsonl"])

    [listed] = [json.loads(line) for line in shell.ok("models", "list", "--json").splitlines()]
    assert listed["export_sha256"] == _sha256(exports["jsonl"])
    assert listed["params"]["export_sha256"] == _sha256(exports["jsonl"])  # MLflow logs it with the rest
    later = shell.ok("train", "--from", str(exports["csv"]), "--kind", "tfidf-logreg",
                     "--since", "2099-01-01")
    assert "(0 labelled messages)" in later


def test_models_list_tells_what_each_model_learned_from(shell: Shell, tmp_path: Path) -> None:
    export = tmp_path / "log.parquet"
    shell.ok("export", "--format", "parquet", "-o", str(export))
    trained = shell.ok("train", "--from", str(export), "--kind", "tfidf-logreg")
    from_export = trained.split("saved model ")[1].split()[0]
    # Trained on the database's labels, as every model of a registry before export hashes was.
    from_database = shell.ok("train", "--kind", "tfidf-logreg-body").split("saved model ")[1].split()[0]

    listing = shell.ok("models", "list").splitlines()[1:]
    assert [line[2:].split()[0] for line in listing] == [from_database, from_export]  # newest first
    lines = {line[2:].split()[0]: line for line in listing}
    assert lines[from_export].endswith(f"export sha256:{_sha256(export)[:12]}")
    assert lines[from_database].endswith("the database's labels")
    listed = {row["version"]: row
              for row in map(json.loads, shell.ok("models", "list", "--json").splitlines())}
    assert listed[from_export]["export_sha256"] == _sha256(export)
    assert listed[from_database]["export_sha256"] is None


def test_train_refuses_what_is_not_an_export_of_messages(shell: Shell, tmp_path: Path) -> None:
    handoffs = tmp_path / "handoffs.csv"
    shell.ok("export", "--what", "handoffs", "--format", "csv", "-o", str(handoffs))
    refused = shell.run("train", "--from", str(handoffs), "--kind", "tfidf-logreg")
    assert refused.exit_code == 1
    assert f"{handoffs}: no text, label column: train on an export of messages" in refused.stderr
    notes = tmp_path / "notes.txt"
    notes.write_text("my labels\n")
    refused = shell.run("train", "--from", str(notes), "--kind", "tfidf-logreg")
    assert refused.exit_code == 1 and "not an export file (.jsonl, .csv or .parquet" in refused.stderr
    notes = notes.rename(tmp_path / "notes.jsonl")
    refused = shell.run("train", "--from", str(notes), "--kind", "tfidf-logreg")
    assert refused.exit_code == 1 and f"{notes}: line 1 is not a JSON object" in refused.stderr
    assert "no trained models yet" in shell.ok("models", "list")


def test_eval_model_record_names_the_model_or_is_refused(shell: Shell, tmp_path: Path) -> None:
    questions = str(ROOT / "tests" / "data" / "paraphrases.csv")
    record = tmp_path / "model.json"
    record.write_text(json.dumps({"kind": "tfidf-logreg"}))
    refused = shell.run("eval", questions, "--model-record", str(record))
    assert refused.exit_code == 1 and f"{record}: not a model record" in refused.stderr
    both = shell.run("eval", questions, "--model-record", str(record), "--model", "tfidf-logreg-x")
    assert both.exit_code == 2 and "choose one of --model, --model-record and --no-model" in both.stderr
    record.write_text(json.dumps({"version": "tfidf-logreg-gone"}))
    unknown = shell.run("eval", questions, "--model-record", str(record))
    assert unknown.exit_code == 1 and "no model version 'tfidf-logreg-gone'" in unknown.stderr
