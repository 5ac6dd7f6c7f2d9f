"""Known vulnerabilities in what Parley runs: pip-audit over requirements.txt and its dependencies.

The runtime set is requirements.txt plus everything it pulls in, at the versions installed here;
pip-audit checks each against PyPI's advisory data. Accepted findings are listed, with the reason,
in ``.pip-audit-allowlist``. When the advisory data cannot be reached (a machine that sees only
the package index), the test says so and is skipped, never passed; set PARLEY_REQUIRE_AUDIT=1 to
make that a failure (CI with internet access).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
ALLOWLIST = ROOT / ".pip-audit-allowlist"
PIP_AUDIT = Path(sys.executable).with_name("pip-audit")


def runtime_pins() -> list[str]:
    """requirements.txt and its dependencies, transitively, as ``name==installed version``."""
    wanted = [Requirement(line.split("#")[0].strip()) for line in (ROOT / "requirements.txt").read_text().splitlines()
              if line.split("#")[0].strip() and not line.startswith("-")]
    seen: dict[str, str] = {}
    while wanted:
        requirement = wanted.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        try:
            distribution = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            continue  # an optional extra's dependency that is not installed: not run either
        seen[name] = distribution.version
        for line in distribution.requires or ():
            dependency = Requirement(line)
            if dependency.marker is None or dependency.marker.evaluate({"extra": ""}):
                wanted.append(dependency)
    return [f"{name}=={version}" for name, version in sorted(seen.items())]


def allowed_ids() -> list[str]:
    ids = [line.split("#")[0].strip() for line in ALLOWLIST.read_text().splitlines()]
    return [i for i in ids if i]


def test_the_allowlist_names_only_advisory_ids_each_with_a_reason() -> None:
    for line in ALLOWLIST.read_text().splitlines():
        if line.split("#")[0].strip():
            assert re.fullmatch(r"(PYSEC|GHSA|CVE)-[\w-]+\s+#\s*\S.*", line.strip()), line


def test_no_known_vulnerability_in_the_runtime_dependencies(tmp_path: Path) -> None:
    pins = tmp_path / "runtime.txt"
    pins.write_text("\n".join(runtime_pins()) + "\n")
    command = [str(PIP_AUDIT), "-r", str(pins), "--no-deps", "--disable-pip", "--progress-spinner", "off",
               "-f", "json", *[arg for vuln in allowed_ids() for arg in ("--ignore-vuln", vuln)]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    report = json.loads(result.stdout or "{}")
    dependencies = report.get("dependencies", [])
    assert dependencies, f"pip-audit printed no report: {result.stderr[-500:]}"
    unaudited = [d for d in dependencies if d.get("skip_reason")]
    if len(unaudited) == len(dependencies):
        reason = ("pip-audit could not reach PyPI's advisory data for any of the "
                  f"{len(dependencies)} runtime dependencies ({unaudited[0]['skip_reason']}); "
                  "no dependency was audited")
        if os.environ.get("PARLEY_REQUIRE_AUDIT") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    assert not unaudited, f"not audited: {[d['name'] for d in unaudited]}"
    found = {f"{d['name']} {d['version']}": [v["id"] for v in d["vulns"]] for d in dependencies if d.get("vulns")}
    assert not found, f"known vulnerabilities (fix the pin, or allow-list with a reason): {found}"
