"""``parley telegram``: the Telegram Bot API set-up."""

from __future__ import annotations

import click

from parley.cli.common import settings_of


@click.group()
def telegram() -> None:
    """Telegram Bot API set-up."""


@telegram.command("set-webhook")
@click.argument("url", required=False)
@click.pass_obj
def telegram_set_webhook(config: str | None, url: str | None) -> None:
    """Register URL (default: PARLEY_PUBLIC_URL + /telegram/webhook) and the secret token."""
    from parley.channels.telegram import TelegramAdapter
    from parley.errors import UpstreamError

    settings = settings_of(config)
    channel = settings.channels.telegram
    if channel.bot_token is None or channel.secret_token is None:
        raise click.ClickException("set TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN first")
    if url is None:
        if settings.server.public_url is None:
            raise click.ClickException("give the webhook URL, or set PARLEY_PUBLIC_URL")
        url = settings.server.public_url.rstrip("/") + "/telegram/webhook"
    adapter = TelegramAdapter(bot_token=channel.bot_token.get_secret_value(),
                              secret_token=channel.secret_token.get_secret_value(),
                              api_url=channel.api_url, max_text_chars=settings.limits.max_text_chars)
    try:
        adapter.set_webhook(url)
    except UpstreamError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        adapter.close()
    click.echo(f"Telegram webhook set to {url} (updates carry the secret token)")
