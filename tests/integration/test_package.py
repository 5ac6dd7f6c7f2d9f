"""Parley as a package: ``pip install .`` (not editable) gives a working ``parley serve``, and the
package declares requirements.txt's pins as its dependencies.

Offline and quick: the wheel is built without build isolation, and installed without its
dependencies into a fresh virtual environment that sees the test environment's libraries through
a ``.pth`` line (they are the pinned ones, which the first test proves).
"""

from __future__ import annotations

import email
import os
import sqlite3
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from packaging.requirements import Requirement

from parley.stores.schema import current_head
from tests.conftest import CONFIG, ROOT
from tests.integration.test_server import free_port, wait_until_ready


def pins(path: Path) -> dict[str, str]:
    """name -> the requirement as written, for each plain line of a requirements file."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith(("#", "-")):
            requirement = Requirement(line)
            found[requirement.name.lower()] = str(requirement)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # From a copy: setuptools writes build/ into the tree it builds, and a build/ left from an
    # earlier run would put modules deleted since into this wheel.
    source = tmp_path_factory.mktemp("source") / "parley"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "var", "*.egg-info",
                                                                "__pycache__", "node_modules"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", str(source), "-w", str(out)], check=True, capture_output=True, timeout=300)
    [built] = out.glob("parley-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed in it, as `pip install .` leaves it."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # The dependencies, from the test environment: only its library directory, not its .pth
    # files (the editable install of Parley is one), which Python reads in site dirs alone.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--no-index", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv


def test_the_package_declares_requirements_txts_pins(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.message_from_bytes(archive.read(f"{wheel.name.split('-py3')[0]}.dist-info/METADATA"))
    declared = {Requirement(line).name.lower(): str(Requirement(line)) for line in metadata.get_all("Requires-Dist")}
    assert declared == pins(ROOT / "requirements.txt")
    # What runs is what is pinned: the test environment has each pin at its version.
    from importlib.metadata import version

    for name, requirement in declared.items():
        assert Requirement(requirement).specifier.contains(version(name)), requirement
    # The other files add to the list, never pin a run-time package differently.
    for extra in ("requirements-dev.txt", "requirements-mlflow.txt", "requirements-dvc.txt"):
        clashes = {name for name, pin in pins(ROOT / extra).items() if name in declared and declared[name] != pin}
        assert not clashes, (extra, clashes)


def test_the_package_carries_its_migrations_and_widget_assets(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    versions = Path(__file__).resolve().parents[2] / "parley" / "migrations" / "versions"
    migrations = {f"parley/migrations/versions/{path.name}" for path in versions.glob("0*.py")}
    assert {"parley/migrations/env.py", "parley/migrations/script.py.mako", *migrations} <= names
    assert {"parley/webhooks/static/widget/widget.js", "parley/webhooks/templates/widget/demo.html"} <= names


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {"PATH": f"{installed / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "PORT": str(port),
           "PARLEY_CONFIG": str(CONFIG), "PARLEY_KNOWLEDGE": str(ROOT / "config" / "knowledge"),
           "PARLEY_DATA_DIR": str(tmp_path / "var")}
    # From a directory of its own: nothing of the source tree is on the path.
    process = subprocess.Popen([str(installed / "bin" / "parley"), "serve"], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_plain_install_serves_the_widget_and_migrates_at_start(
        installed: Path, served: tuple[str, subprocess.Popen[bytes]], tmp_path: Path) -> None:
    where = subprocess.run([str(installed / "bin" / "python"), "-c",
                            "import parley.stores.schema as s; print(s.MIGRATIONS)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(installed), where  # the installed copy, not the source tree
    url, _ = served
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
    assert "widget.js" in requests.get(f"{url}/widget", timeout=5).text
    assert requests.get(f"{url}/widget/widget.js", timeout=5).status_code == 200
    answer = requests.post(f"{url}/widget/api/messages", json={"text": "How do I reset my password?"}, timeout=10)
    assert answer.json()["replies"][0]["sources"][0]["id"] == "reset-password"
    with sqlite3.connect(tmp_path / "var" / "parley.db") as database:
        assert database.execute("SELECT version_num FROM alembic_version").fetchall() == [(current_head(),)]
    version = subprocess.run([str(installed / "bin" / "parley"), "--version"], capture_output=True, text=True,
                             env={**os.environ, "PATH": str(installed / "bin")})
    assert version.stdout == "parley 0.1.0\n"
    _, process = served
    process.terminate()
    output = process.communicate(timeout=30)[0].decode()
    assert "Running upgrade 0004 -> 0005" in output  # migrated at start, from the package's own files
    assert "Control socket" not in output and "setup plugin" not in output  # neither a socket nor noise


def test_parley_imports_no_private_module_of_a_dependency() -> None:
    # `openai._httpx2`, `slack_sdk._...`: a library's private modules change without notice.
    import ast

    private = []
    for path in (ROOT / "parley").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [f"{node.module}.{alias.name}" for alias in node.names] \
                if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            private += [f"{path.relative_to(ROOT)}: {name}" for name in names
                        if name.split(".")[0] != "parley" and any(part.startswith("_") and part != "__future__"
                                                                  for part in name.split("."))]
    assert private == []
