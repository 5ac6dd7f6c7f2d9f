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
from datetime import time as dt_time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from parley.errors import ConfigError

DEFAULT_CONFIG = "config/parley.yaml"
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


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
    # Redis inbox (ignored in embedded mode, where partitions = server.workers).
    partitions: int | None = Field(default=None, ge=1, le=4096,
                                   description="inbox partitions; default server.workers; never fewer")
    visibility_timeout_seconds: float = Field(default=30.0, ge=0.5, description=(
        "how long a dead worker's partition and its in-flight message wait before another takes them"))
    max_attempts: int = Field(default=5, ge=1, description="failed attempts before the dead-letter stream")
    key_prefix: str = Field(default="parley:", max_length=100)


class LimitSettings(Model):
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_text_chars: int = Field(default=2000, ge=1)
    max_form_fields: int = Field(default=100, ge=10, description="fields of a form body (Twilio sends ~25)")
    # Slack, Twilio and Telegram customers (the widget has its own, answered with 429): over the
    # limit, one polite notice per window, then messages are dropped and logged until it passes.
    messages_per_minute_per_sender: int = Field(default=30, ge=1)
    messages_per_minute_per_conversation: int = Field(default=60, ge=1)


class WidgetSettings(Model):
    # Origins allowed to embed the widget; "*" may stand in a subdomain or the port.
    allowed_origins: tuple[str, ...] = ()
    messages_per_minute: int = Field(default=20, ge=1, description="per browser (conversation)")
    messages_per_minute_per_ip: int = Field(default=120, ge=1)

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        # PARLEY_WIDGET_ORIGINS arrives as one comma-separated string (or null when unset).
        if value is None:
            return ()
        if isinstance(value, str):
            value = value.split(",")
        origins = tuple(str(part).strip().rstrip("/") for part in value if str(part).strip())
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s@]+", origin):
                raise ValueError(f"{origin!r} is not an origin like https://shop.example or http://localhost:*")
        return origins


class SlackSettings(Model):
    """Slack Events API; on when both the bot token and the signing secret are set."""

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    handoff_channel: str | None = None
    api_url: str = "https://slack.com/api/"

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None and self.signing_secret is not None


class TwilioSettings(Model):
    """SMS and WhatsApp through Twilio; on when the account SID and auth token are set."""

    account_sid: SecretStr | None = None
    auth_token: SecretStr | None = None
    api_url: str = "https://api.twilio.com"

    @property
    def enabled(self) -> bool:
        return self.account_sid is not None and self.auth_token is not None


class TelegramSettings(Model):
    """Telegram Bot API webhook; on when the bot token and the webhook secret token are set."""

    bot_token: SecretStr | None = None
    secret_token: SecretStr | None = Field(default=None, description="1-256 of A-Z a-z 0-9 _ -")
    api_url: str = "https://api.telegram.org"

    @property
    def enabled(self) -> bool:
        return self.bot_token is not None and self.secret_token is not None


class ChannelSettings(Model):
    widget: WidgetSettings = WidgetSettings()
    slack: SlackSettings = SlackSettings()
    twilio: TwilioSettings = TwilioSettings()
    telegram: TelegramSettings = TelegramSettings()


class AdminSettings(Model):
    token: SecretStr | None = None


class LlmSettings(Model):
    """The OpenAI-compatible engine; on when ``api_key`` is set (``OPENAI_API_KEY``)."""

    api_key: SecretStr | None = None
    base_url: str | None = None
    model: str = "gpt-4o-mini"
    timeout_seconds: float = Field(default=20.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    top_k: int = Field(default=3, ge=1, le=20)
    max_history_tokens: int = Field(default=1500, ge=0)
    max_completion_tokens: int = Field(default=400, ge=16)
    max_answer_chars: int = Field(default=1500, ge=100)
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)
    monthly_token_budget: int | None = Field(default=None, ge=1)
    cache_ttl_seconds: int = Field(default=24 * 3600, ge=0)
    cache_max_entries: int = Field(default=10_000, ge=1)
    breaker_failures: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=512, ge=1)


class DataSettings(Model):
    """Exports, trained models and their use by the offline engine (``parley export|train``)."""

    models_dir: Path | None = Field(default=None, description="default: <server.data_dir>/models")
    # name -> regular expression; each match is exported as [NAME] (after emails, phones, cards).
    redact_patterns: dict[str, str] = {}
    # Keys the hash that replaces customer and conversation ids in redacted exports; unset, each
    # export draws a random key (ids then group within one export but not across exports).
    pseudonym_key: SecretStr | None = None
    # The active model answers when its probability reaches this; else retrieval answers.
    model_min_confidence: float = Field(default=0.25, ge=0.0, le=1.0)
    # How often a serving process checks which model is active (activate/rollback need no restart).
    model_refresh_seconds: float = Field(default=30.0, ge=0.0)

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{name}: not a valid regular expression: {exc}") from None
        return patterns


class BusinessHoursSettings(Model):
    """When reps answer; outside it a request stays open and the customer is told when they're back."""

    timezone: str = "UTC"
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    opens: dt_time = dt_time(9, 0)
    closes: dt_time = dt_time(17, 0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone like Europe/Paris") from None
        return value

    @model_validator(mode="after")
    def _opens_before_closing(self) -> BusinessHoursSettings:
        if self.opens >= self.closes:
            raise ValueError(f"opens ({self.opens:%H:%M}) must be before closes ({self.closes:%H:%M})")
        return self


class HandoffSettings(Model):
    """Handing conversations to support reps in Slack (``channels.slack.handoff_channel``).

    Each trigger can be switched off (``false`` or ``null``).
    """

    on_request: bool = True                         # the customer asks for a person
    keywords: tuple[str, ...] = ()                  # e.g. refund, cancel my account
    low_confidence_after: int | None = Field(default=3, ge=1)
    on_engine_request: bool = True                  # the LLM's handoff tool call
    engine_failures_after: int | None = Field(default=2, ge=1)
    business_hours: BusinessHoursSettings | None = None   # null: people answer around the clock
    unclaimed_reminder_seconds: int | None = Field(default=300, ge=5)
    expected_wait_minutes: int = Field(default=15, ge=1)
    note_prefix: str = Field(default="//", min_length=1, max_length=8)
    show_rep_names: bool = True
    transcript_turns: int = Field(default=10, ge=0, le=50)


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
    llm: LlmSettings = LlmSettings()
    logging: LogSettings = LogSettings()
    data: DataSettings = DataSettings()
    handoff: HandoffSettings = HandoffSettings()

    @property
    def models_dir(self) -> Path:
        return self.data.models_dir or self.server.data_dir / "models"

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL: ``DATABASE_URL`` when set, else a SQLite file in the data dir."""
        if self.storage.database_url is not None:
            return _sqlalchemy_url(self.storage.database_url.get_secret_value())
        return f"sqlite:///{self.server.data_dir / 'parley.db'}"


def secret_values(model: BaseModel) -> list[str]:
    """Every secret the settings hold (keys, tokens, passwords inside URLs), for output filters."""
    found: list[str] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            found.extend(secret_values(value))
        elif isinstance(value, SecretStr):
            secret = value.get_secret_value()
            parts = urlsplit(secret)
            # A URL's host and scheme are no secret (answers may name them); its password is.
            found.append((parts.password or "") if parts.scheme and parts.netloc else secret)
    return [secret for secret in found if secret]


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
