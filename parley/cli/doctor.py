"""``parley doctor`` and ``parley check-config``: check a deployment from the inside, one line per check.

Run it in a pod (``kubectl exec deploy/parley-web -- parley doctor``) or anywhere with the pod's
environment. Each check says ok, FAIL (with what to fix) or skip (not configured). Secrets are never
printed: URLs are shown without their credentials, and API errors by their code only.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import click

from parley.cli.common import settings_of
from parley.errors import ConfigError
from parley.settings import Settings

Status = Literal["ok", "FAIL", "skip", "warn"]
TIMEOUT = 5.0


@click.command()
@click.pass_obj
def doctor(config: str | None) -> None:
    """Check a deployment from the inside: config, SQL, Redis, LLM, channel credentials, public URL."""
    settings = settings_of(config)
    click.echo(f"ok    config: {config or os.environ.get('PARLEY_CONFIG') or 'config/parley.yaml'} is valid")
    failed = 0
    for check in run_checks(settings):
        failed += check.status == "FAIL"
        click.echo(f"{check.status:<5} {check.name}: {check.detail}")
    if failed:
        raise click.ClickException(f"{failed} check(s) failed")


@click.command("check-config")
@click.pass_obj
def check_config(config: str | None) -> None:
    """Validate the YAML and the knowledge base without starting anything."""
    from parley.stores.knowledge import load_index

    settings = settings_of(config)
    try:
        index = load_index(settings.knowledge.path, language=settings.knowledge.language)
        embeddings = _embeddings(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    for gap in settings.texts.gaps():  # a half-translated file still runs: say what falls back
        click.echo(f"warning: {gap}", err=True)
    languages = ", ".join(settings.texts.all_languages)
    click.echo(f"configuration OK: bot {settings.bot.name!r}, texts in {languages}, "
               f"{len(index)} knowledge articles "
               f"(version {index.version}), embeddings {embeddings}, "
               f"log at {settings.database_url.split('@')[-1]}")


def _embeddings(settings: Settings) -> str:
    from parley.stores.embeddings import check

    if settings.knowledge.embedding_model == "off":
        return "off"
    return check(settings.knowledge.embedding_dir)



@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str


def run_checks(settings: Settings) -> Iterator[Check]:
    """Every check, in the order an operator would fix them."""
    checks: list[tuple[str, Callable[[Settings], Check | None]]] = [
        ("knowledge", _knowledge), ("sql", _sql), ("redis", _redis), ("llm", _llm),
        ("slack", _slack), ("twilio", _twilio), ("telegram", _telegram), ("public url", _public_url),
    ]
    for name, check in checks:
        try:
            result = check(settings)
        except Exception as exc:  # one broken dependency must not hide the other checks
            result = Check(name, "FAIL", f"{type(exc).__name__}: {_first_line(exc)}")
        if result is not None:
            yield result


def _knowledge(settings: Settings) -> Check:
    from parley.stores.knowledge import load_index

    index = load_index(settings.knowledge.path, language=settings.knowledge.language)
    return Check("knowledge", "ok", f"{len(index)} articles in {settings.knowledge.path} (version {index.version}); "
                                    f"embeddings {_embeddings(settings)}")


def _sql(settings: Settings) -> Check:
    from sqlalchemy import text

    from parley.stores import schema
    from parley.stores.sql import open_database

    database = open_database(settings.database_url)
    try:
        with database.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = schema.current(database), schema.current_head()
    finally:
        database.dispose()
    where = _without_credentials(settings.database_url)
    if current != head:
        return Check("sql", "FAIL", f"{where} is at revision {current or 'none'}, the code needs {head}: "
                                    "run `parley db upgrade` (the migrate Job) before the rollout")
    return Check("sql", "ok", f"{where} reachable, schema at {head}")


# What a Redis restart without its append-only file costs (deployments/README.md, "What survives what").
FORGETS = ("a restart loses the queued messages and forgets the dedupe keys and the send ledger, so "
           "platforms' retries are answered again; set appendonly yes (appendfsync everysec)")


def _redis(settings: Settings) -> Check:
    url = settings.storage.redis_url
    if url is None:
        return Check("redis", "skip", "REDIS_URL not set: embedded store (one process only)")
    from parley.stores.redis_topology import connect, is_cluster

    where = _without_credentials(url.get_secret_value())
    client = connect(url.get_secret_value())
    try:
        client.ping()
        version = client.info("server").get("redis_version", "?")
        if is_cluster(client):
            return _redis_cluster(settings, client, where, version)
        if client.info("cluster").get("cluster_enabled") == 1:
            return Check("redis", "FAIL", f"{where} is a Redis Cluster node: set REDIS_URL to "
                                          f"redis+cluster://{where.partition('://')[2]} (rediss+cluster:// for TLS)")
        keeps = bool(client.info("persistence").get("aof_enabled"))
    finally:
        client.close()
    if not keeps:
        return Check("redis", "warn", f"{where} answers (Redis {version}) but keeps nothing on disk between "
                                      f"restarts (appendonly no): {FORGETS}")
    return Check("redis", "ok", f"{where} answers (Redis {version}), append-only file on")


def _redis_cluster(settings: Settings, client: Any, where: str, version: str) -> Check:
    """The cluster's state, and whether every master has the replica an ack waits for."""
    state = client.cluster_info().get("cluster_state")
    if state != "ok":
        return Check("redis", "FAIL", f"{where}: cluster_state is {state}: some slots have no live master")
    masters = client.get_primaries()
    replicas = {node.name: client.get_redis_connection(node).info("replication").get("connected_slaves", 0)
                for node in masters}
    alone = [name for name, count in replicas.items() if count == 0]
    volatile = [node.name for node in masters
                if not client.get_redis_connection(node).info("persistence").get("aof_enabled")]
    wanted = settings.storage.redis_wait_replicas
    summary = (f"{where} answers: Redis Cluster of {len(masters)} masters, {sum(replicas.values())} "
               f"replicas, state ok (Redis {version})")
    if alone and wanted != 0:
        return Check("redis", "warn", f"{summary}; without a replica: {', '.join(alone)}: acks there wait "
                                      f"{settings.storage.redis_wait_timeout_ms} ms and a failover could lose "
                                      "them (add replicas, or set storage.redis_wait_replicas: 0)")
    waits = "acks do not wait for a replica" if wanted == 0 else f"acks wait for {wanted or 1} replica(s)"
    if volatile:
        return Check("redis", "warn", f"{summary}; {waits}; appendonly no on {', '.join(volatile)}: {FORGETS}")
    return Check("redis", "ok", f"{summary}; {waits}")


def _llm(settings: Settings) -> Check:
    if settings.llm.api_key is None:
        return Check("llm", "skip", "OPENAI_API_KEY not set: offline answers")
    import openai

    from parley.engines.clients import make_client

    client = make_client(settings.llm.model_copy(update={"max_retries": 0, "timeout_seconds": TIMEOUT}))
    endpoint = settings.llm.base_url or "https://api.openai.com/v1"
    try:
        # What the app itself does, at the smallest size: one completion of one token.
        client.chat.completions.create(model=settings.llm.model, max_tokens=1,
                                       messages=[{"role": "user", "content": "ping"}])
    except openai.APIStatusError as exc:
        return Check("llm", "FAIL", f"{endpoint} refused a completion with model {settings.llm.model}: "
                                    f"HTTP {exc.status_code}")
    except openai.APIConnectionError:
        return Check("llm", "FAIL", f"{endpoint} cannot be reached (OPENAI_BASE_URL?)")
    return Check("llm", "ok", f"{endpoint} answers with model {settings.llm.model}")


def _slack(settings: Settings) -> Check:
    slack = settings.channels.slack
    if not slack.enabled:
        return Check("slack", "skip", "SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET not set")
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    base = slack.api_url if slack.api_url.endswith("/") else slack.api_url + "/"
    client = WebClient(token=slack.bot_token.get_secret_value(), base_url=base, timeout=int(TIMEOUT))  # type: ignore[union-attr]
    try:
        identity = client.auth_test()
    except SlackApiError as exc:
        return Check("slack", "FAIL", f"auth.test refused the bot token: {exc.response.get('error')}")
    detail = f"bot token accepted for {identity.get('user')} in team {identity.get('team')}"
    if slack.handoff_channel is None:
        return Check("slack", "warn", detail + "; SLACK_HANDOFF_CHANNEL not set: handoffs have nowhere to go")
    return Check("slack", "ok", detail)


def _twilio(settings: Settings) -> Check:
    twilio = settings.channels.twilio
    if not twilio.enabled:
        return Check("twilio", "skip", "TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN not set")
    from twilio.base.exceptions import TwilioRestException
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    sid = twilio.account_sid.get_secret_value()  # type: ignore[union-attr]
    client = Client(sid, twilio.auth_token.get_secret_value(),  # type: ignore[union-attr]
                    http_client=TwilioHttpClient(timeout=TIMEOUT))
    client.api.base_url = twilio.api_url.rstrip("/")
    try:
        account = client.api.v2010.accounts(sid).fetch()
    except TwilioRestException as exc:
        return Check("twilio", "FAIL", f"the account SID and auth token were refused (HTTP {exc.status}, "
                                       f"code {exc.code})")
    return Check("twilio", "ok", f"credentials accepted for account {account.friendly_name!r} ({account.status})")


def _telegram(settings: Settings) -> Check:
    telegram = settings.channels.telegram
    if not telegram.enabled:
        return Check("telegram", "skip", "TELEGRAM_BOT_TOKEN / TELEGRAM_SECRET_TOKEN not set")
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    async def get_me() -> str:
        async with Bot(telegram.bot_token.get_secret_value(),  # type: ignore[union-attr]
                       base_url=f"{telegram.api_url.rstrip('/')}/bot") as bot:
            return bot.username

    try:
        username = asyncio.run(get_me())
    except (InvalidToken, TelegramError) as exc:
        return Check("telegram", "FAIL", f"getMe refused the bot token: {type(exc).__name__}")
    return Check("telegram", "ok", f"bot token accepted for @{username}")


def _public_url(settings: Settings) -> Check:
    """Twilio signs the URL it requested; behind an Ingress only PARLEY_PUBLIC_URL knows it."""
    public = settings.server.public_url
    twilio_on = settings.channels.twilio.enabled
    if not public:
        status: Status = "FAIL" if twilio_on else "warn"
        return Check("public url", status, "PARLEY_PUBLIC_URL not set: Twilio signatures will be checked "
                                           "against the URL the pod sees, which behind an Ingress differs")
    parts = urlsplit(public)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
        return Check("public url", "FAIL", f"PARLEY_PUBLIC_URL={public!r} is not a base URL like https://chat.example.com")
    import requests

    signed = f"{public.rstrip('/')}/twilio/messages"
    problems = []
    if parts.scheme != "https":
        problems.append("not https (Twilio and Slack need TLS)")
    try:
        reply = requests.get(f"{public.rstrip('/')}/widget/api/config", timeout=TIMEOUT)
        reached = reply.status_code == 200 and "greeting" in reply.json()
    except (requests.RequestException, ValueError):
        reached = False
    if not reached:
        problems.append("it does not reach this Parley (GET /widget/api/config through it failed)")
    detail = f"Twilio signatures are computed on {signed}"
    return Check("public url", "warn" if problems else "ok",
                 detail + ("; " + "; ".join(problems) if problems else "; reachable"))


def _without_credentials(url: str) -> str:
    """The URL without user, password or query (a cluster URL may list several host:port)."""
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path.partition('?')[0]}"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
