"""The desk's App Home tab: the open requests, oldest first, kept current for the reps looking at it.

Slack tells an app when a rep opens the tab (``app_home_opened``) and never when they leave it, so
the tab is published when it is opened, and republished for every rep who opened it within the last
``VIEWERS_SECONDS`` each time the queue changes (a request opened, claimed, handed back or resolved:
``SlackDesk`` calls ``refresh``). Who opened it is kept in the directory (SQL), so a claim processed
by any pod refreshes the tab a rep opened through another.

A tab is a view of the directory, never the only copy of anything, so a message's processing never
fails for it: whatever goes wrong (the database, Slack) is logged and the tab left as it was. Changes
that come while a refresh is publishing are folded into one more round, not one each, and a
rate-limited or unreachable Slack ends the round (the next change, or the rep's next visit, catches
up): ``views.publish`` is limited per workspace, and every round would only be refused again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from parley.channels.slack_common import slack_failure
from parley.channels.slack_views import HOME_REQUESTS, home_view
from parley.core.desk import DeskDirectory
from parley.core.desk_texts import DESK_TEXTS, DeskTexts

logger = structlog.get_logger("parley.desk")

# A rep who opened the tab this recently sees it change; later, it is current when next opened.
VIEWERS_SECONDS = 3600
# At most this many reps' tabs republished per change: views.publish is rate-limited per workspace.
MAX_VIEWERS = 50
# After a 429 without Retry-After, the refreshes skipped for this long.
QUIET_SECONDS = 30.0


class DeskHome:
    def __init__(self, *, client: WebClient, directory: DeskDirectory, texts: DeskTexts = DESK_TEXTS,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.texts = texts
        self.directory = directory
        self._clock = clock
        self._lock = threading.Lock()
        self._publishing = False  # a refresh round is under way in this process
        self._again = False  # the queue changed during that round
        self._quiet_until = 0.0  # Slack asked us to slow down until then

    def opened(self, rep_user: str) -> None:
        """The rep opened the tab: publish it, and keep it current for them from now on."""
        try:
            self.directory.home_opened(rep_user)
            self._publish([rep_user])
        except Exception as exc:  # noqa: BLE001 - a view: nothing is lost when it stays as it was
            logger.warning("desk_home_failed", error=type(exc).__name__, detail=str(exc)[:200])

    def refresh(self) -> None:
        """The queue changed: republish the tab of every rep who opened it lately."""
        with self._lock:
            if self._publishing:  # the round under way does one more pass when it ends
                self._again = True
                return
            self._publishing = True
        try:
            while True:
                self._refresh_once()
                with self._lock:
                    if not self._again:
                        break
                    self._again = False
        finally:
            with self._lock:
                self._publishing = self._again = False

    def _refresh_once(self) -> None:
        if self._clock() < self._quiet_until:
            logger.info("desk_home_skipped", reason="rate limited")
            return
        try:
            viewers = self.directory.home_viewers(self._clock() - VIEWERS_SECONDS, MAX_VIEWERS)
            if viewers:
                self._publish(viewers)
        except Exception as exc:  # noqa: BLE001 - a view: the message being sent must still settle
            logger.warning("desk_home_failed", error=type(exc).__name__, detail=str(exc)[:200])

    def _publish(self, rep_users: list[str]) -> None:
        view = home_view(self.directory.waiting(HOME_REQUESTS), now=self._clock(), texts=self.texts)
        for rep_user in rep_users:
            try:
                self.client.views_publish(user_id=rep_user, view=view)
            except (SlackClientError, OSError) as exc:
                failure = slack_failure(exc, "views.publish")
                logger.warning("desk_home_failed", rep=rep_user, error=type(exc).__name__,
                               detail=str(failure)[:200])
                if failure.retry_after is not None or _rate_limited(exc):
                    self._quiet_until = self._clock() + (failure.retry_after or QUIET_SECONDS)
                if failure.transient:  # rate-limited or unreachable: the others would fail alike
                    return


def _rate_limited(exc: Exception) -> bool:
    return isinstance(exc, SlackApiError) and getattr(exc.response, "status_code", 0) == 429
