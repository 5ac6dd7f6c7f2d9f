"""The data scientists' DVC pipeline (pipelines/dvc/), as they use it: copied into a git repository
of their own with a local DVC remote, run by the installed ``dvc`` against a Parley whose SQLite
conversation log holds labelled conversations."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import CONFIG, ROOT
from tests.integration.data_support import environ_for, fresh_database
from tests.integration.labelled_support import ASKED, labelled_log

BIN = Path(sys.executable).parent
PIPELINE = ROOT / "pipelines" / "dvc"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A shell's environment as a data scientist has it beside a (SQLite) Parley: the pseudonym key
    makes an unchanged log export the same bytes; DVC sends no usage analytics (no network) and
    keeps its per-repository index in the test's directory, not in /var/tmp/dvc."""
    with fresh_database("sqlite", tmp_path) as url:
        yield {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path / "home"), "PARLEY_CONFIG": str(CONFIG),
               "PARLEY_DATA_DIR": str(tmp_path / "var"),
               "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
               "PARLEY_CACHE_DIR": os.environ["PARLEY_CACHE_DIR"], "PARLEY_PSEUDONYM_KEY": "test-pseudonyms",
               "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
               "GIT_AUTHOR_NAME": "Data Scientist",
               "GIT_AUTHOR_EMAIL": "ds@example.com", "GIT_COMMITTER_NAME": "Data Scientist",
               "GIT_COMMITTER_EMAIL": "ds@example.com", **environ_for(url)}


def _run(*args: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def _repo(tmp_path: Path, env: dict[str, str]) -> Path:
    """The pipeline copied into a new git + DVC repository with a local remote (a directory)."""
    repo = tmp_path / "data-repo"
    shutil.copytree(PIPELINE, repo)
    _run("git", "init", "--quiet", cwd=repo, env=env)
    _run("dvc", "init", "--quiet", cwd=repo, env=env)
    _run("dvc", "remote", "add", "--default", "storage", str(tmp_path / "remote"), cwd=repo, env=env)
    return repo


def test_dvc_repro_trains_a_model_that_names_its_export_and_metrics_diff_compares_runs(
        tmp_path: Path, env: dict[str, str]) -> None:
    labelled_log(tmp_path, env)
    repo = _repo(tmp_path, env)

    _run("dvc", "repro", cwd=repo, env=env)  # params.yaml as shipped: the default kind, hybrid-svm
    export = repo / "data" / "conversations.parquet"
    texts = pq.read_table(export, columns=["text", "label"]).to_pylist()
    assert sum(1 for row in texts if row["label"]) == len(ASKED)
    assert not any("ana@example.com" in row["text"] for row in texts)  # the snapshot is redacted
    export_sha256 = hashlib.sha256(export.read_bytes()).hexdigest()

    record = json.loads((repo / "model.json").read_text())
    assert record["export_sha256"] == export_sha256 and record["kind"] == "hybrid-svm"
    registered = [json.loads(line) for line in _run("parley", "models", "list", "--json", cwd=repo,
                                                     env=env).splitlines()]
    assert [(m["version"], m["export_sha256"], m["active"]) for m in registered] == [
        (record["version"], export_sha256, False)]  # registered, and left for a person to activate
    assert f"export sha256:{export_sha256[:12]}" in _run("parley", "models", "list", cwd=repo, env=env)

    metrics = json.loads((repo / "metrics.json").read_text())
    direct = json.loads(_run("parley", "eval", "questions.csv", "--model", record["version"], "--json",
                             cwd=repo, env=env))
    figures = ("questions", "accuracy", "refusal_rate", "macro_f1", "answered_by")
    assert {k: metrics[k] for k in figures} == {k: direct[k] for k in figures}
    assert metrics["questions"] == 49 and metrics["answered_by"].get(record["version"], 0) > 0

    _run("git", "add", "--all", cwd=repo, env=env)
    _run("git", "commit", "--quiet", "-m", "first snapshot", cwd=repo, env=env)
    _run("dvc", "push", cwd=repo, env=env)
    pushed = [path for path in (tmp_path / "remote").rglob("*") if path.is_file()]
    assert [path.read_bytes() for path in pushed] == [export.read_bytes()]

    again = _run("dvc", "repro", cwd=repo, env=env)  # the log has not changed: nothing to train
    assert "Stage 'train' didn't change, skipping" in again and "Stage 'eval' didn't change" in again

    (repo / "params.yaml").write_text((repo / "params.yaml").read_text().replace(
        "kind: hybrid-svm", "kind: tfidf-logreg"))
    _run("dvc", "repro", cwd=repo, env=env)
    second = json.loads((repo / "model.json").read_text())
    assert second["version"] != record["version"] and second["export_sha256"] == export_sha256
    params = json.loads(_run("dvc", "params", "diff", "--json", cwd=repo, env=env))
    assert params["params.yaml"]["train.kind"] == {"old": "hybrid-svm", "new": "tfidf-logreg"}
    diff = json.loads(_run("dvc", "metrics", "diff", "--json", cwd=repo, env=env))["metrics.json"]
    new = json.loads((repo / "metrics.json").read_text())
    assert diff["accuracy"]["old"] == metrics["accuracy"] and diff["accuracy"]["new"] == new["accuracy"]
    assert diff[f"answered_by.{second['version']}"]["old"] is None
    assert diff[f"answered_by.{second['version']}"]["new"] == new["answered_by"][second["version"]]
