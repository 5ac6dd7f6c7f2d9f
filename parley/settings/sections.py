"""The configuration's sections: one frozen pydantic model each, unknown keys refused."""

from __future__ import annotations

import re
from datetime import time as dt_time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from parley.core.files import DEFAULT_TYPES
from parley.core.stemming import snowball_language


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
    # Below this relevance the bot says it is not sure. With embeddings it is the cosine of the
    # answer's best passage with the question (chosen on data by bench/threshold.py); with
    # embeddings off, the TF-IDF score, whose measured threshold is 0.14.
    min_confidence: float = Field(default=0.36, ge=0.0, le=1.0)
    # Sentence embeddings beside TF-IDF (hybrid retrieval, and the features of `parley train`'s
    # default kind). "default": all-MiniLM-L6-v2 int8, installed by requirements.txt; a directory
    # with model.onnx and tokenizer.json (Hugging Face's ONNX export layout); or "off".
    embedding_model: str = "default"
    # Where passage vectors are cached by content hash (default <server.data_dir>/cache): a
    # volume that outlives pods, or one baked into the image, spares every start the embedding.
    cache_dir: Path | None = None
    # How often each process looks for edited, new or removed articles (a stat per file) and, when
    # it finds some, loads them in the background without a restart; 0: only at start.
    reload_seconds: float = Field(default=10.0, ge=0.0)
    # The articles' language: its Snowball stemmer reads them and the questions ("es" or
    # "spanish"; English stop words are dropped for English only). One language per knowledge base.
    language: str = "en"

    @field_validator("language")
    @classmethod
    def _stemmer(cls, value: str) -> str:
        snowball_language(value)  # ValueError: the languages there are
        return value

    @field_validator("embedding_model")
    @classmethod
    def _model_directory(cls, value: str) -> str:
        if value not in ("default", "off") and not Path(value).is_dir():
            raise ValueError(f"{value} is not a directory with model.onnx and tokenizer.json "
                             "(or say 'default' or 'off')")
        return value

    @property
    def embedding_dir(self) -> Path | None:
        return None if self.embedding_model in ("default", "off") else Path(self.embedding_model)


class ServerSettings(Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    data_dir: Path = Path("var")
    workers: int | None = Field(default=None, ge=1, le=10_000, description=(
        "messages in flight per process; unset: 256 with an LLM (each waits as a greenlet), "
        "16 with the offline engine (CPU-bound: more would only delay the webhooks' acks)"))

    def workers_for(self, *, llm: bool) -> int:
        """``workers``, or the default for the engine: waiting is cheap, computing is not."""
        return self.workers or (256 if llm else 16)
    reply_timeout_seconds: float = Field(default=10.0, gt=0)
    trusted_proxies: int = Field(default=0, ge=0, le=10, description=(
        "proxies in front (e.g. 1 behind an Ingress) whose X-Forwarded-For/-Proto/-Host to believe; 0: none"))


class StorageSettings(Model):
    redis_url: SecretStr | None = None
    database_url: SecretStr | None = None
    session_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    history_turns: int = Field(default=20, ge=1)
    history_chars: int = Field(default=8000, ge=100)
    dedupe_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # Redis inbox (ignored in embedded mode). Shards spread the inbox over Redis Cluster nodes; they
    # do not bound throughput (any worker serves any shard). Change only while the inbox is empty.
    inbox_shards: int = Field(default=16, ge=1, le=1024, description="hash-tagged inbox shards")
    visibility_timeout_seconds: float = Field(default=30.0, ge=0.5, description=(
        "how long a dead worker's conversations and in-flight messages wait before another takes them"))
    max_attempts: int = Field(default=5, ge=1, description="failed attempts before the dead-letter stream")
    # Replication is asynchronous: a master killed just after an ack may take the message with it
    # unless the ack waited for a replica (WAIT). Unset: 1 on a Redis Cluster (every master has a
    # replica that takes over), 0 on a single Redis (usually none, and WAIT would then stall acks).
    redis_wait_replicas: int | None = Field(default=None, ge=0, le=5, description=(
        "replicas that must have a message before its webhook is acked; unset: 1 on a cluster, else 0"))
    redis_wait_timeout_ms: int = Field(default=250, ge=1, le=2000, description=(
        "longest an ack waits for them; past it the message is acked anyway and a warning logged"))
    key_prefix: str = Field(default="parley:", max_length=100)


class LimitSettings(Model):
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_text_chars: int = Field(default=2000, ge=1)
    max_form_fields: int = Field(default=100, ge=10, description="fields of a form body (Twilio sends ~25)")
    # Slack, Twilio and Telegram customers (the widget has its own, answered with 429): over the
    # limit, one polite notice per window, then messages are dropped and logged until it passes.
    messages_per_minute_per_sender: int = Field(default=30, ge=1)
    messages_per_minute_per_conversation: int = Field(default=60, ge=1)


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
    # Where customers' national phone numbers are from (ISO 3166 codes, e.g. US, GB, DE): numbers
    # written without +country are recognised as these regions' numbers; international ones always.
    phone_regions: tuple[str, ...] = ("US",)
    # Keys the hash that replaces customer and conversation ids in redacted exports; unset, each
    # export draws a random key (ids then group within one export but not across exports).
    pseudonym_key: SecretStr | None = None
    # The active model answers when its probability reaches this; else retrieval answers.
    model_min_confidence: float = Field(default=0.25, ge=0.0, le=1.0)
    # How often a serving process checks which model is active (activate/rollback need no restart).
    model_refresh_seconds: float = Field(default=30.0, ge=0.0)
    # Conversations with no message for this many days are deleted (GDPR storage limitation), by a
    # sweep every ``retention_check_seconds`` that one process of the cluster runs. Unset: kept.
    retention_days: int | None = Field(default=None, ge=1)
    retention_check_seconds: float = Field(default=3600.0, ge=1.0)

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        import phonenumbers

        regions = tuple(region.upper() for region in regions)
        unknown = [region for region in regions if region not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a region phonenumbers knows "
                             "(ISO 3166 codes: US, GB, DE...)")
        return regions

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


class HandoffFilesSettings(Model):
    """Files passed on between a handed-off customer and the reps' thread, either way."""

    max_mb: float = Field(default=10, gt=0, le=100)  # Slack takes up to 1 GB, Telegram bots send 50 MB
    # What may pass, checked against the bytes themselves; "image/*" allows any image.
    types: tuple[str, ...] = DEFAULT_TYPES

    @field_validator("types")
    @classmethod
    def _media_types(cls, types: tuple[str, ...]) -> tuple[str, ...]:
        for media_type in types:
            if not re.fullmatch(r"[a-z0-9][a-z0-9.+-]*/(\*|[a-z0-9][a-z0-9.+-]*)", media_type):
                raise ValueError(f"{media_type!r} is not a media type such as image/png or image/*")
        return types


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
    files: HandoffFilesSettings = HandoffFilesSettings()


class LogSettings(Model):
    level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    json_format: bool = Field(default=False, alias="json")
