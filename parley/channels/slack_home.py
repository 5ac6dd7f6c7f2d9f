"""The desk's App Home tab: the open requests, oldest first, kept current for the reps looking at it.

Slack tells an app when a rep opens the tab (``app_home_opened``) and never when they leave it, so
the tab is published when it is opened, and republished for every rep who opened it within the last
``VIEWERS_SECONDS`` each time a request comes or goes (a handoff opened, claimed, handed back or
resolved: ``SlackDesk`` calls ``refresh``). Who opened it is kept in the directory (SQL), so a
claim processed by any pod refreshes the tab a rep opened through another.

A tab that cannot be published is logged and left as it was: it is a view of the directory, never
the only copy of anything, and a message's processing never fails for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from parley.channels.slack_views import home_view
from parley.core.desk import DeskDirectory

logger = structlog.get_logger("parley.desk")

# A rep who opened the tab this recently sees it change; later, it is current when next opened.
VIEWERS_SECONDS = 3600
# At most this many reps' tabs republished per change: views.publish is rate-limited per workspace.
MAX_VIEWERS = 50
# Waiting requests read for the tab: the first ones are shown, the rest counted ("…and N more").
COUNTED = 500


class DeskHome:
    def __init__(self, *, client: WebClient, directory: DeskDirectory,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.directory = directory
        self._clock = clock

    def opened(self, rep_user: str) -> None:
        """The rep opened the tab: publish it, and keep it current for them from now on."""
        self.directory.home_opened(rep_user)
        self._publish([rep_user])

    def refresh(self) -> None:
        """A request came or went: republish the tab of every rep who opened it lately."""
        viewers = self.directory.home_viewers(self._clock() - VIEWERS_SECONDS, MAX_VIEWERS)
        if viewers:
            self._publish(viewers)

    def _publish(self, rep_users: list[str]) -> None:
        view = home_view(self.directory.waiting(COUNTED), now=self._clock())
        for rep_user in rep_users:
            try:
                self.client.views_publish(user_id=rep_user, view=view)
            except (SlackClientError, OSError) as exc:
                logger.warning("desk_home_failed", rep=rep_user, error=type(exc).__name__, detail=str(exc)[:200])
