"""Open widget panels may hold only some of a process's threads: the webhooks must still be answered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from parley.webhooks.app import create_app
from tests.conftest import make_settings

SHOP = "https://www.shop.example"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, PARLEY_WIDGET_ORIGINS=SHOP, PARLEY_WIDGET_MAX_STREAMS="2"))
    yield app
    app.extensions["parley"].close()


def open_stream(client: FlaskClient, n: int):
    conversation_id = f"w{n:032x}"
    token = client.application.extensions["parley"].widget.keys.stream_token(conversation_id)
    return client.get(f"/widget/api/conversations/{conversation_id}/events?token={token}", headers={"Origin": SHOP})


def test_a_stream_without_its_pass_takes_no_slot(client: FlaskClient) -> None:
    refused = [client.get(f"/widget/api/conversations/w{n:032x}/events").status_code for n in range(3)]
    assert refused == [401] * 3
    streams = [open_stream(client, n) for n in range(2)]
    assert [s.status_code for s in streams] == [200, 200]
    for stream in streams:
        stream.close()


def test_streams_past_the_cap_get_503_with_retry_after_until_one_closes(client: FlaskClient) -> None:
    first, second = open_stream(client, 1), open_stream(client, 2)
    assert (first.status_code, second.status_code) == (200, 200)
    refused = open_stream(client, 3)
    assert refused.status_code == 503
    assert refused.get_json() == {"error": "too many open event streams; retry later"}
    assert refused.headers["Retry-After"] == "10"
    assert refused.headers["Access-Control-Allow-Origin"] == SHOP  # so the widget can read Retry-After
    # Everything else is still served while the streams are full.
    assert client.get("/widget/api/config").status_code == 200
    assert client.post("/widget/api/messages", json={"text": "hi"}, headers={"Origin": SHOP}).status_code == 200
    first.close()  # the browser went away: its slot is free again
    again = open_stream(client, 3)
    assert again.status_code == 200
    for stream in (second, again):
        stream.close()


def test_a_refused_stream_does_not_use_up_a_slot(client: FlaskClient) -> None:
    streams = [open_stream(client, n) for n in range(2)]
    assert [open_stream(client, 9).status_code for _ in range(5)] == [503] * 5
    streams.pop().close()
    streams.append(open_stream(client, 9))
    assert [s.status_code for s in streams] == [200, 200]
    for stream in streams:
        stream.close()
