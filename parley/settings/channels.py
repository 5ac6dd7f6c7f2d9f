"""The ``channels:`` sections of the YAML: the widget, Slack, Twilio and Telegram."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SecretStr, field_validator

from parley.settings.sections import Model


class WidgetSettings(Model):
    # Origins allowed to embed the widget; "*" may stand in a subdomain or the port.
    allowed_origins: tuple[str, ...] = ()
    messages_per_minute: int = Field(default=20, ge=1, description="per browser (conversation)")
    messages_per_minute_per_ip: int = Field(default=120, ge=1)
    max_streams: int = Field(default=10_000, ge=0, description=(
        "open event streams per process (each a greenlet of about 20 KB); more get 503 and poll the "
        "history; keep it below `parley serve --connections`"))
    # Keys the HMAC that makes each conversation's secret (PARLEY_WIDGET_KEY). Unset: a key kept in
    # Redis (every pod shares it) or, embedded, in <server.data_dir>/widget.key.
    secret_key: SecretStr | None = None
    legacy_claim_hours: float = Field(default=24, ge=0, description=(
        "a chat opened before conversations had secrets re-attaches once, while its customer's last "
        "message is younger than this; 0: never (such chats start afresh)"))

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
