"""One validated ``Settings`` model, loaded once from YAML with ``${VAR}`` expansion.

``load_settings()`` reads ``config/parley.yaml`` (or ``PARLEY_CONFIG``), expands ``${VAR}`` and
``${VAR:-default}`` in string values from an injected ``environ`` mapping, and validates the result.
Unknown keys are errors so a typo never passes silently. Secrets are ``SecretStr`` and print masked.
A value that is exactly one ``${VAR:-}`` reference expanding to nothing becomes null, so optional
channels and stores stay off until their variable is set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from parley.errors import ConfigError

DEFAULT_CONFIG = "config/parley.yaml"
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Theme(Model):
    primary: str = Field(default="#2563eb", pattern=r"^#[0-9a-fA-F]{3,8}$")


class BotSettings(Model):
    name: str = "acme"
    title: str = "Acme Support"
    greeting: str = "Hi! I'm the Acme assistant. Ask me anything about orders, billing or your account."
    quick_replies: tuple[str, ...] = ()
    persona: str = "You are a friendly, concise customer-support assistant."
    theme: Theme = Theme()


class KnowledgeSettings(Model):
    path: Path = Path("config/knowledge")
    min_confidence: float = Field(default=0.14, ge=0.0, le=1.0)


class ServerSettings(Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    data_dir: Path = Path("var")
    workers: int = Field(default=8, ge=1, le=1024, description="dialogue worker threads per process")
    reply_timeout_seconds: float = Field(default=10.0, gt=0)


class StorageSettings(Model):
    redis_url: SecretStr | None = None
    database_url: SecretStr | None = None
    session_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    history_turns: int = Field(default=20, ge=1)
    history_chars: int = Field(default=8000, ge=100)
    dedupe_ttl_seconds: int = Field(default=24 * 3600, ge=60)


class LimitSettings(Model):
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_text_chars: int = Field(default=2000, ge=1)


class WidgetSettings(Model):
    allowed_origins: tuple[str, ...] = ()


class ChannelSettings(Model):
    widget: WidgetSettings = WidgetSettings()


class AdminSettings(Model):
    token: SecretStr | None = None


class LogSettings(Model):
    level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    json_format: bool = Field(default=False, alias="json")


class Settings(Model):
    bot: BotSettings = BotSettings()
    knowledge: KnowledgeSettings = KnowledgeSettings()
    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    limits: LimitSettings = LimitSettings()
    channels: ChannelSettings = ChannelSettings()
    admin: AdminSettings = AdminSettings()
    logging: LogSettings = LogSettings()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL: ``DATABASE_URL`` when set, else a SQLite file in the data dir."""
        if self.storage.database_url is not None:
            return _sqlalchemy_url(self.storage.database_url.get_secret_value())
        return f"sqlite:///{self.server.data_dir / 'parley.db'}"


def _sqlalchemy_url(url: str) -> str:
    # Platforms hand out postgres:// URLs; SQLAlchemy needs the driver spelled out.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


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
    return data


def _describe(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        reason = "unknown key (check the spelling)" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"{file}: {key}: {reason}")
    return "\n".join(lines)
