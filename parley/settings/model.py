"""``Settings``, the whole configuration, and the secrets it holds."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr

from parley.core.texts import Texts

from parley.settings.channels import ChannelSettings
from parley.settings.sections import (
    AdminSettings,
    BotSettings,
    DataSettings,
    HandoffSettings,
    KnowledgeSettings,
    LimitSettings,
    LlmSettings,
    LogSettings,
    Model,
    ServerSettings,
    StorageSettings,
)
from parley.settings.texts import TextsSettings


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
    texts: TextsSettings = TextsSettings()

    @property
    def catalog(self) -> Texts:
        """Every customer-facing text per language (``bot.greeting``/``quick_replies`` still count)."""
        return self.texts.catalog(greeting=self.bot.greeting, quick_replies=self.bot.quick_replies)

    @property
    def models_dir(self) -> Path:
        return self.data.models_dir or self.server.data_dir / "models"

    @property
    def knowledge_cache_dir(self) -> Path:
        """Where passage vectors are cached by content hash (rebuilt from the articles if lost)."""
        return self.knowledge.cache_dir or self.server.data_dir / "cache"

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
