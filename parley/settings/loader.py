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
        raise ConfigError(yaml_error(file, exc)) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: the top level must be a mapping of sections, not {type(raw).__name__}")
    data = _apply_overrides(_beside_the_file(expand(raw, environ, file=file), file), environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc)) from None


def yaml_error(file: Path, exc: yaml.YAMLError) -> str:
    """One line naming the file, line and column, and PyYAML's reason: its own text names the
    parsed string ``<unicode string>``, not the file. (An article's front matter is parsed from
    the rest of its first ``---`` line on, so its lines count as the file's.)"""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return f"{file}: not valid YAML: {exc}"
    where = f"{file}: line {mark.line + 1}, column {mark.column + 1}"
    reason = getattr(exc, "problem", None) or "cannot be parsed"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark is not None:
        reason += f" ({context} from line {context_mark.line + 1}, column {context_mark.column + 1})"
    elif context:
        reason += f" ({context})"
    return f"{where}: not valid YAML: {reason}"


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


def _beside_the_file(data: dict[str, Any], file: Path) -> dict[str, Any]:
    # A relative knowledge.path written in the YAML is read from the file's directory, so the
    # file means the same whoever starts Parley from wherever (PARLEY_KNOWLEDGE, typed in a shell,
    # stays relative to where it was typed).
    knowledge = data.get("knowledge")
    if isinstance(knowledge, dict) and isinstance(knowledge.get("path"), str) \
            and not Path(knowledge["path"]).is_absolute():
        data = {**data, "knowledge": {**knowledge, "path": str(file.parent / knowledge["path"])}}
    return data


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
