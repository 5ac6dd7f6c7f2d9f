"""Files on Slack, for both of its adapters (a customer's DM, the reps' desk): what a message's
``files`` are, their download with the bot token, and an upload into a conversation or thread."""

from __future__ import annotations


import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from parley.channels.files import download, origin_of
from parley.channels.slack_common import slack_failure
from parley.core.envelope import Attachment
from parley.core.files import FileBody

FILES_HOST = "files.slack.com"  # where Slack keeps uploaded files (``url_private_download``)


def attachments(files: object, *, origin: str) -> tuple[Attachment, ...]:
    """A message event's ``files`` as attachments; one Slack does not host (an external or deleted
    file, a Slack post) keeps no handle to fetch it by."""
    found = []
    for file in files if isinstance(files, list) else []:
        if not isinstance(file, dict):
            continue
        hosted = file.get("mode") in (None, "hosted", "snippet") and not file.get("is_external")
        url = file.get("url_private_download") or file.get("url_private")
        size = file.get("size")
        found.append(Attachment(content_type=str(file.get("mimetype") or "file")[:100],
                                name=str(file.get("name") or file.get("title") or "")[:200],
                                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                                origin=origin if hosted and isinstance(url, str) else "",
                                ref=url[:2000] if hosted and isinstance(url, str) else ""))
    return tuple(found)


class SlackFiles:
    """Downloads with the bot token (from Slack's file host, or the configured API's for a
    workspace behind a proxy, and nowhere else); uploads with ``files_upload_v2``."""

    def __init__(self, client: WebClient, *, timeout: float = 30.0) -> None:
        self.client = client
        self._timeout = timeout
        self._session = requests.Session()
        # Slack's file host over https, and the configured API's own (a proxy, or a test's stub).
        self._allowed = {f"https://{FILES_HOST}", origin_of(client.base_url)}

    def fetch(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        return download(attachment.ref, session=self._session, max_bytes=max_bytes, name=attachment.name,
                        timeout=self._timeout, allowed=self._allowed, what="Slack",
                        headers={"Authorization": f"Bearer {self.client.token}"})

    def upload(self, file: FileBody, *, channel: str, thread_ts: str | None,
               comment: str | None = None) -> None:
        try:
            self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=file.data,
                                        filename=file.name, title=file.name, initial_comment=comment)
        except (SlackClientError, OSError) as exc:  # OSError: URLError, timeouts
            raise slack_failure(exc, "Slack file upload") from exc

    def close(self) -> None:
        self._session.close()


class SlackFileSource:
    """``FileSource`` for an adapter holding ``files``: its channel's files come from Slack."""

    files: SlackFiles

    def fetch_file(self, attachment: Attachment, *, max_bytes: int) -> bytes:
        return self.files.fetch(attachment, max_bytes=max_bytes)

    def close(self) -> None:
        self.files.close()

