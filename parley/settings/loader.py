"""Reading ``Settings`` from YAML: ``${VAR}`` expansion, overrides and errors naming file and key."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from parley.errors import ConfigError
from parley.settings.model import Settings

DEFAULT_CONFIG = "config/parley.yaml"
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate the YAML; raise ``ConfigError`` naming file, key and reason."""
    environ = os.environ if environ is None else environ
    file = Path(path or environ.get("PARLEY_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found (set PARLEY_CONFIG or create it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of sections, not {type(raw).__name__}")
    data = _apply_overrides(expand(raw, environ, file=file), environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc)) from None


def expand(value: Any, environ: Mapping[str, str], *, file: Path, where: str = "") -> Any:
    """Expand ``${VAR}`` references in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {key: expand(item, environ, file=file, where=f"{where}.{key}".lstrip("."))
                for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item, environ, file=file, where=f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match["name"], match["default"]
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{file}: {where}: environment variable {name} is not set "
                          f"(set it, or write ${{{name}:-default}})")

    expanded = _REFERENCE.sub(substitute, value)
    if expanded == "" and _REFERENCE.fullmatch(value):
        return None
    return expanded


def _apply_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    # PARLEY_KNOWLEDGE overrides the file (DESIGN.md's environment contract), whatever the YAML says.
    if environ.get("PARLEY_KNOWLEDGE"):
        knowledge = dict(data.get("knowledge") or {})
        knowledge["path"] = environ["PARLEY_KNOWLEDGE"]
        data = {**data, "knowledge": knowledge}
    for variable, key in (("PARLEY_EMBEDDING_MODEL", "embedding_model"), ("PARLEY_CACHE_DIR", "cache_dir")):
        if environ.get(variable):
            knowledge = dict(data.get("knowledge") or {})
            knowledge[key] = environ[variable]
            data = {**data, "knowledge": knowledge}
    return data


def _describe(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        reason = "unknown key (check the spelling)" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{file}: {key}: {reason}")
    return "\n".join(lines)
