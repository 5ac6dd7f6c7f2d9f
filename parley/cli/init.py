"""``parley init DIR``: a configuration and a first knowledge article to start a bot of one's own."""

from __future__ import annotations

from pathlib import Path

import click

CONFIG = """\
# Parley configuration, made by `parley init`. Every value may read the environment: ${VAR} or
# ${VAR:-default}; a value that expands to nothing is "not set". `parley check-config` validates it.
# Every section and key, with what it does: config/parley.yaml in Parley's repository.

bot:
  name: %(name)s
  title: %(title)s
  persona: >-
    You are a friendly, concise customer-support assistant. Answer only from the knowledge-base
    passages you are given, and offer a person when they do not cover the question.

texts:
  # What the customer reads, per language; add a language to `languages` and a variant to each
  # text (`parley check-config` lists the ones still missing). Every key: config/parley.yaml.
  default_language: en
  languages: [en]
  greeting:
    en: "Hi! Ask me a question, or ask for a person."

knowledge:
  path: ${PARLEY_KNOWLEDGE:-knowledge}          # Markdown articles; relative: to this file
  min_confidence: 0.14                           # below this the bot says it is not sure

server:
  host: ${PARLEY_HOST:-127.0.0.1}
  port: ${PORT:-8000}
  public_url: ${PARLEY_PUBLIC_URL:-}
  data_dir: ${PARLEY_DATA_DIR:-var}              # SQLite and model files in embedded mode

storage:
  redis_url: ${REDIS_URL:-}                      # unset: embedded in-process store
  database_url: ${DATABASE_URL:-}                # unset: SQLite under data_dir

channels:
  widget:
    allowed_origins: ${PARLEY_WIDGET_ORIGINS:-}  # sites that may embed the widget
  slack:
    bot_token: ${SLACK_BOT_TOKEN:-}
    signing_secret: ${SLACK_SIGNING_SECRET:-}
    handoff_channel: ${SLACK_HANDOFF_CHANNEL:-}  # where reps take over conversations
  twilio:
    account_sid: ${TWILIO_ACCOUNT_SID:-}
    auth_token: ${TWILIO_AUTH_TOKEN:-}
  telegram:
    bot_token: ${TELEGRAM_BOT_TOKEN:-}
    secret_token: ${TELEGRAM_SECRET_TOKEN:-}

admin:
  token: ${PARLEY_ADMIN_TOKEN:-}

llm:
  api_key: ${OPENAI_API_KEY:-}                   # unset: the offline engine answers
  base_url: ${OPENAI_BASE_URL:-}
  model: ${OPENAI_MODEL:-gpt-4o-mini}

logging:
  level: ${PARLEY_LOG_LEVEL:-INFO}
  json: ${PARLEY_LOG_JSON:-false}
"""

ARTICLE = """\
---
id: getting-started
title: How do I get started?
tags: [start, help]
questions:
  - where do I begin
  - how does this work
  - what can you help me with
---
Welcome! This is the first article of your knowledge base. Each article is a Markdown file in
`knowledge/` with a title and the **questions** customers ask in their own words; the bot answers
with the article that fits best and names it as its source. Replace this one with your own.
"""


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="support", show_default=True, help="The bot's name (a short id).")
@click.option("--title", default="Support", show_default=True, help="The bot's title, as customers see it.")
def init(directory: Path, name: str, title: str) -> None:
    """Make DIRECTORY/parley.yaml and a first article in DIRECTORY/knowledge (nothing is overwritten)."""
    from parley.errors import ConfigError
    from parley.settings import load_settings
    from parley.stores.knowledge import load_index

    config, article = directory / "parley.yaml", directory / "knowledge" / "getting-started.md"
    for path in (config, article):
        if path.exists():
            raise click.ClickException(f"{path} already exists: nothing was written")
    article.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(CONFIG % {"name": _yaml_string(name), "title": _yaml_string(title)}, encoding="utf-8")
    article.write_text(ARTICLE, encoding="utf-8")
    try:  # what was written is what `parley serve` will read
        settings = load_settings(config, environ={})
        load_index(settings.knowledge.path, language=settings.knowledge.language)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {config} and {article}\nnext:\n"
               f"  export PARLEY_CONFIG={config.resolve()}\n"
               "  parley check-config   # validate\n"
               "  parley chat           # ask it something in the terminal\n"
               "  parley serve          # the widget at http://127.0.0.1:8000/widget")


def _yaml_string(value: str) -> str:
    import json

    return json.dumps(value)  # a JSON string is a YAML string: quotes and colons stay text
