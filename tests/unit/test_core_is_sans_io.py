"""``parley.core`` must stay sans-IO and channel-blind: no web framework, SDK, Redis or SQL."""

from __future__ import annotations

import ast
from pathlib import Path

import parley.core

FORBIDDEN = {"flask", "werkzeug", "slack_sdk", "slack_bolt", "twilio", "telegram", "redis", "sqlmodel",
             "sqlalchemy", "psycopg", "openai", "httpx", "requests", "socket", "urllib", "gunicorn",
             "structlog"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_imports_no_io_library() -> None:
    offenders = {
        str(path.name): sorted(imported_roots(path) & FORBIDDEN)
        for path in Path(parley.core.__file__).parent.rglob("*.py")
    }
    assert {name: libs for name, libs in offenders.items() if libs} == {}


def test_core_imports_nothing_outside_core_from_parley() -> None:
    for path in Path(parley.core.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("parley."):
                assert node.module.startswith("parley.core"), f"{path.name} imports {node.module}"
