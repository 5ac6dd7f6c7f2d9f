"""One validated ``Settings`` model, loaded once from YAML with ``${VAR}`` expansion.

``load_settings()`` reads ``config/parley.yaml`` (or ``PARLEY_CONFIG``), expands ``${VAR}`` and
``${VAR:-default}`` in string values from an injected ``environ`` mapping, and validates the result.
Unknown keys are errors so a typo never passes silently. Secrets are ``SecretStr`` and print masked.
A value that is exactly one ``${VAR:-}`` reference expanding to nothing becomes null, so optional
channels and stores stay off until their variable is set.

Split in three: ``sections`` (one model per YAML section), ``model`` (``Settings`` itself) and
``loader`` (``load_settings``). Import from here.
"""

from __future__ import annotations

from parley.settings.loader import DEFAULT_CONFIG, expand, load_settings
from parley.settings.model import Settings, secret_values
from parley.settings.channels import (
    ChannelSettings,
    SlackSettings,
    TelegramSettings,
    TwilioSettings,
    WidgetSettings,
)
from parley.settings.sections import (
    AdminSettings,
    BotSettings,
    BusinessHoursSettings,
    DataSettings,
    HandoffSettings,
    KnowledgeSettings,
    LimitSettings,
    LlmSettings,
    LogSettings,
    Model,
    ServerSettings,
    StorageSettings,
    Theme,
    Weekday,
)
from parley.settings.texts import TextsSettings

__all__ = [
    "AdminSettings",
    "BotSettings",
    "BusinessHoursSettings",
    "ChannelSettings",
    "DEFAULT_CONFIG",
    "DataSettings",
    "HandoffSettings",
    "KnowledgeSettings",
    "LimitSettings",
    "LlmSettings",
    "LogSettings",
    "Model",
    "ServerSettings",
    "Settings",
    "SlackSettings",
    "StorageSettings",
    "TelegramSettings",
    "TextsSettings",
    "Theme",
    "TwilioSettings",
    "Weekday",
    "WidgetSettings",
    "expand",
    "load_settings",
    "secret_values",
]
