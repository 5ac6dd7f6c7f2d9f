"""The reps' interactive desk as slack-bolt listeners: ``/slack/interactions``, ``/slack/commands``
and the App Home's ``app_home_opened`` event.

Bolt verifies every request with the signing secret (a bad signature: 401) and routes it to one
small listener by its kind and id. Listeners only acknowledge and enqueue rep actions into the
durable inbox, the same envelopes as before, so a conversation's rep and customer messages are
handled in order by one worker. Three things cannot wait for a worker and are done in the request:
opening a modal (its ``trigger_id`` dies after 3 s), the article picker's options (Slack waits for
them) and publishing the App Home tab; labelling an answer is one row, written at once like a
customer's thumbs. ``process_before_response``: the listener finishes before Slack gets its ack, so
nothing runs on Bolt's threads after the request, and an inbox that cannot store answers 503.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import structlog
from slack_bolt import Ack, App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from parley.channels.base import clean_text
from parley.channels.slack_desk import SlackDesk
from parley.channels.slack_views import (ANSWERS_SHOWN, ARTICLE, LABEL_VIEW, NO_ARTICLE, OPTIONS, SEND_ARTICLE,
                                         WRONG_ANSWER, article_options, chosen_article, label_modal,
                                         metadata_of, note_modal, send_modal)
from parley.core.envelope import Envelope
from parley.core.handoff import DESK
from parley.core.markdown import quoted
from parley.errors import MalformedPayload, ParleyError
from parley.webhooks.desk_commands import command_reply
from parley.webhooks.intake import enqueue
from parley.wiring import Services

logger = structlog.get_logger("parley.desk")


def desk_app(services: Services, desk: SlackDesk, *, bot_token: str, signing_secret: str) -> App:
    """The Bolt app for the desk: no network at start (``authorize`` answers from configuration,
    where ``token=`` would call ``auth.test``), and errors answered without a trace."""
    def authorize(**_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id=None, bot_token=bot_token)

    bolt_logger = logging.getLogger("parley.bolt")
    bolt_logger.addFilter(_TokenIgnored())
    # Bolt's INFO lines include whole request bodies (a refused signature's): never at INFO here.
    bolt_logger.setLevel(logging.WARNING)
    app = App(signing_secret=signing_secret, authorize=authorize, client=desk.client,
              process_before_response=True, logger=bolt_logger,
              url_verification_enabled=False, ssl_check_enabled=False)
    app.error(_on_error)
    _rep_buttons(app, services, desk)
    _articles(app, services, desk)
    app.command(re.compile(r"^/"))(lambda ack, command: ack(
        response_type="ephemeral", text=command_reply(services, desk, command)))
    app.event("app_home_opened")(lambda event: _publish_home(desk, event))
    return app


class _TokenIgnored(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN in the environment is ignored beside ``authorize``: by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "will be ignored" not in record.getMessage()


def _rep_buttons(app: App, services: Services, desk: SlackDesk) -> None:
    @app.action(re.compile(r"^parley_(claim|hand_back|resolve)(_\d+)?$"))
    def rep_action(ack: Ack, body: dict[str, Any]) -> None:
        enqueue(desk.action_envelopes(body), services)  # durably stored before the ack
        ack()

    @app.action(re.compile(rf"^{WRONG_ANSWER}_\d+$"))
    def wrong_answer(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
        ack()
        conversation_id, _ = _thread_of(desk, body)
        answer_id = str(action.get("value") or "")
        answer = next((a for a in desk.directory.answers(conversation_id, ANSWERS_SHOWN * 4)
                       if a.answer_id == answer_id), None) if conversation_id else None
        texts = desk.texts
        view = (note_modal(texts.label_title, texts.label_gone, texts) if answer is None
                else label_modal(answer, {"c": conversation_id, "a": answer_id}, texts))
        _open(client, body, view)

    @app.action(SEND_ARTICLE)
    def send_article_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        _open_send(client, body, desk, *_thread_of(desk, body))

    @app.shortcut(SEND_ARTICLE)
    def send_article_shortcut(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        message = body.get("message") if isinstance(body.get("message"), dict) else {}
        channel = str((body.get("channel") or {}).get("id") or "") if isinstance(body.get("channel"), dict) else ""
        thread = str(message.get("thread_ts") or message.get("ts") or "")
        conversation_id = desk.directory.conversation_of(channel, thread) if channel and thread else None
        _open_send(client, body, desk, conversation_id or "", thread)


def _articles(app: App, services: Services, desk: SlackDesk) -> None:
    @app.options(ARTICLE)
    def options(ack: Ack, payload: dict[str, Any]) -> None:
        typed = str(payload.get("value") or "").strip()[:200]
        index = services.index
        if typed:
            found = [hit.article for hit in index.search(typed, k=OPTIONS)]
            folded = typed.casefold()
            found += [a for a in index.articles if folded in f"{a.id} {a.title}".casefold() and a not in found]
        else:
            found = sorted(index.articles, key=lambda a: a.title)
        view = payload.get("view") if isinstance(payload.get("view"), dict) else {}
        ack(options=article_options(found, with_none=view.get("callback_id") == LABEL_VIEW, texts=desk.texts))

    @app.view(LABEL_VIEW)
    def label(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta, article = metadata_of(view), chosen_article(view)
        known = article == NO_ARTICLE or (article is not None and services.index.get(article) is not None)
        texts = desk.texts
        if not known or article is None:
            ack(response_action="errors", errors={ARTICLE: texts.unknown_article})
            return
        message_id = desk.directory.label_answer(meta.get("c", ""), meta.get("a", ""), article)
        logger.info("desk_label" if message_id else "desk_label_unknown_answer",
                    conversation_id=meta.get("c", "")[:200], article=article, message_id=message_id)
        title = quoted(services.index.get(article).title) if article != NO_ARTICLE else texts.no_article
        text = texts.labelled.format(article=title) if message_id else texts.label_gone
        ack(response_action="update", view=note_modal(texts.label_title, text, texts))

    @app.view(SEND_ARTICLE)
    def send(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta, chosen = metadata_of(view), chosen_article(view)
        article = services.index.get(chosen) if chosen else None
        if article is None:
            ack(response_action="errors", errors={ARTICLE: desk.texts.unknown_article})
            return
        user = body.get("user") if isinstance(body.get("user"), dict) else {}
        rep = str(user.get("id") or "")
        if not rep or not meta.get("c") or not meta.get("t"):
            raise MalformedPayload("view_submission without a rep or a conversation")
        text = f"**{article.title}**\n\n{article.body}" + (f"\n\n{article.url}" if article.url else "")
        envelope = Envelope(channel=DESK, conversation_id=meta["c"][:200], role="agent", action="article",
                            message_id=f"view:{str(view.get('id') or '')[:40]}:{rep}", sender=rep,
                            sender_name=str(user.get("name") or user.get("username") or rep),
                            text=clean_text(text, max_chars=services.settings.limits.max_text_chars, clip=True),
                            route={"thread_ts": meta["t"][:32]}, raw={"article": article.id})
        enqueue([envelope], services)  # durably stored before the modal closes
        ack()


def _thread_of(desk: SlackDesk, body: dict[str, Any]) -> tuple[str, str]:
    """The conversation and thread of a button on a thread's header."""
    container = body.get("container") if isinstance(body.get("container"), dict) else {}
    thread = str(container.get("thread_ts") or container.get("message_ts") or "")
    channel = str(container.get("channel_id") or "")
    return (desk.directory.conversation_of(channel, thread) or "") if thread else "", thread


def _open_send(client: WebClient, body: dict[str, Any], desk: SlackDesk, conversation_id: str, thread: str) -> None:
    texts = desk.texts
    view = (send_modal({"c": conversation_id, "t": thread}, texts) if conversation_id
            else note_modal(texts.send_title, texts.send_unknown_thread, texts))
    _open(client, body, view)


def _open(client: WebClient, body: dict[str, Any], view: dict[str, Any]) -> None:
    trigger = body.get("trigger_id")
    if not isinstance(trigger, str) or not trigger:
        raise MalformedPayload("an interaction without a trigger_id")
    try:
        client.views_open(trigger_id=trigger, view=view)
    except (SlackClientError, OSError) as exc:  # the rep sees nothing open; nothing else to undo
        logger.warning("desk_modal_failed", error=type(exc).__name__, detail=str(exc)[:200])


def _publish_home(desk: SlackDesk, event: dict[str, Any]) -> None:
    if event.get("tab") == "home" and isinstance(event.get("user"), str):
        desk.home.opened(event["user"])


def _on_error(error: Exception) -> BoltResponse:
    """Our errors as their status and public text (an inbox down: 503); anything else a bare 500."""
    if isinstance(error, ParleyError):
        logger.warning("request_refused", status=error.status, error=type(error).__name__, detail=str(error))
        return BoltResponse(status=error.status, body=json.dumps({"error": error.public_message}),
                            headers={"content-type": "application/json"})
    if isinstance(error, (TypeError, KeyError, AttributeError, IndexError, ValueError)):
        # Signed by Slack but not shaped as Slack documents it: refused, the detail only in the log.
        logger.warning("request_refused", status=400, error="MalformedPayload", detail=repr(error)[:200])
        return BoltResponse(status=400, body=json.dumps({"error": "malformed payload"}),
                            headers={"content-type": "application/json"})
    logger.error("request_crashed", error=type(error).__name__, exc_info=error)
    return BoltResponse(status=500, body=json.dumps({"error": "internal error"}),
                        headers={"content-type": "application/json"})
