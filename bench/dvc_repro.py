"""How long the data scientists' DVC pipeline (pipelines/dvc/) takes on the sample.

Makes a Parley data dir whose SQLite log holds the labelled conversations the DVC test uses,
copies the pipeline into a fresh git + DVC repository, then times, by the wall clock, `dvc repro`
with params.yaml as shipped (hybrid-svm), again with nothing changed (export runs, train and eval
are skipped), and once per other kind given (the kind changed in params.yaml). Most of each run
is `parley` starting three times (export, train, eval).

    .venv/bin/python bench/dvc_repro.py [--kinds tfidf-logreg tfidf-logreg-body]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.labelled_support import ASKED, labelled_log  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="*", default=["tfidf-logreg", "tfidf-logreg-body"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-dvc-bench-") as scratch:
        tmp = Path(scratch)
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(tmp / "home"),
               "PARLEY_CONFIG": str(ROOT / "config" / "parley.yaml"), "PARLEY_DATA_DIR": str(tmp / "var"),
               "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"), "PARLEY_PSEUDONYM_KEY": "bench",
               "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(tmp / "dvc-site"),
               **{k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")}}
        labelled_log(tmp, env)  # also embeds the sample's passages once, into the data dir's cache
        repo = tmp / "data-repo"
        shutil.copytree(ROOT / "pipelines" / "dvc", repo)
        for command in (["git", "init", "--quiet"], ["dvc", "init", "--quiet"]):
            subprocess.run(command, cwd=repo, env=env, check=True)
        print(f"{len(ASKED)} labelled messages; `dvc repro` wall time:")
        _timed("hybrid-svm (params.yaml as shipped)", repo, env)
        _timed("nothing changed (export only)", repo, env)
        kind = "hybrid-svm"
        for new in args.kinds:
            params = repo / "params.yaml"
            params.write_text(params.read_text().replace(f"kind: {kind}", f"kind: {new}"))
            kind = new
            _timed(f"kind changed to {new}", repo, env)


def _timed(what: str, repo: Path, env: dict[str, str]) -> None:
    start = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=repo, env=env, check=True, capture_output=True)
    print(f"  {what:40} {time.perf_counter() - start:6.1f} s")


if __name__ == "__main__":
    main()
