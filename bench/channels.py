"""Slack, Twilio and Telegram webhooks: how fast each is acknowledged and answered.

For each channel, N distinct signed webhook deliveries (protocol-exact payloads from
tests/payloads, with fresh ids) go through the app's WSGI interface one after the other; the
official SDK sends each answer to a loopback stub of the platform API. The bench times the
acknowledgement (what the platform waits for: Slack gives up after 3 s) and the time until the
stub has received the answer.

Prints, per channel: ack p50/p99 and answer p50/p99 in milliseconds, and answered messages/s.
Deliveries arrive at a steady ``--rate``; a rate above what the workers answer measures the queue.

    .venv/bin/python bench/channels.py [--messages 200] [--rate 25]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402

from parley.settings import load_settings  # noqa: E402
from parley.webhooks.app import create_app  # noqa: E402
from tests.stubs.server import StubServer, serving, slack_api, telegram_api, twilio_api  # noqa: E402

PAYLOADS = ROOT / "tests" / "payloads"
QUESTIONS = ("How do I reset my password?", "how long does delivery take", "can I return an item",
             "my payment was declined", "where is my package")
SECRET = "bench-secret-0123456789"


def slack_request(number: int) -> tuple[bytes, dict[str, str], str]:
    event = json.loads((PAYLOADS / "slack" / "message_im.json").read_text())
    event["event_id"] = f"EvBENCH{number:06d}"
    event["event"].update(channel=f"D{number:08d}", text=QUESTIONS[number % len(QUESTIONS)])
    body = json.dumps(event).encode()
    stamp = str(int(time.time()))
    return body, {"X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=stamp, body=body),
                  "Content-Type": "application/json"}, "/slack/events"


def twilio_request(number: int) -> tuple[bytes, dict[str, str], str]:
    form = dict(parse_qsl((PAYLOADS / "twilio" / "sms.txt").read_text().strip(), keep_blank_values=True))
    form.update(MessageSid=f"SM{number:032d}", From=f"+1212555{number:04d}", Body=QUESTIONS[number % 5])
    signature = RequestValidator(SECRET).compute_signature("http://localhost/twilio/messages", form)
    return urlencode(form).encode(), {"X-Twilio-Signature": signature,
                                      "Content-Type": "application/x-www-form-urlencoded"}, "/twilio/messages"


def telegram_request(number: int) -> tuple[bytes, dict[str, str], str]:
    update = json.loads((PAYLOADS / "telegram" / "text.json").read_text())
    update["update_id"] = 900_000 + number
    update["message"]["chat"]["id"] = 7_000_000 + number
    update["message"]["text"] = QUESTIONS[number % len(QUESTIONS)]
    return json.dumps(update).encode(), {"X-Telegram-Bot-Api-Secret-Token": SECRET,
                                         "Content-Type": "application/json"}, "/telegram/webhook"


CHANNELS: dict[str, tuple[Callable[..., object], str, Callable[[int], tuple[bytes, dict[str, str], str]]]] = {
    "slack": (lambda: slack_api, "chat.postMessage", slack_request),
    "twilio": (twilio_api, "Messages.json", twilio_request),
    "telegram": (telegram_api, "sendMessage", telegram_request),
}


def environment(channel: str, stub: StubServer, data_dir: str) -> dict[str, str]:
    env = {"PARLEY_DATA_DIR": data_dir, "PARLEY_LOG_LEVEL": "WARNING"}
    if channel == "slack":
        env.update(SLACK_BOT_TOKEN="xoxb-fake_bench", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=stub.url + "/api/")
    elif channel == "twilio":
        env.update(TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN=SECRET, TWILIO_API_URL=stub.url)
    else:
        env.update(TELEGRAM_BOT_TOKEN="1:bench", TELEGRAM_SECRET_TOKEN=SECRET, TELEGRAM_API_URL=stub.url)
    return env


def run(channel: str, messages: int, rate: float) -> None:
    make_stub, endpoint, make_request = CHANNELS[channel]
    with serving(make_stub()) as stub, tempfile.TemporaryDirectory() as data_dir:  # type: ignore[arg-type]
        app = create_app(load_settings(ROOT / "config" / "parley.yaml", environ=environment(channel, stub, data_dir)))
        client = app.test_client()
        acks, sent = [], []
        started = time.perf_counter()
        for number in range(messages):
            body, headers, path = make_request(number)
            time.sleep(max(0.0, started + number / rate - time.perf_counter()))  # a steady arrival rate
            before = time.perf_counter()
            response = client.post(path, data=body, headers=headers)
            acks.append(time.perf_counter() - before)
            sent.append(before)
            assert response.status_code == 200, response.get_data()
        answered = stub.wait_for(endpoint, messages, timeout=120)
        elapsed = time.perf_counter() - started
        app.extensions["parley"].close()
    # Answers arrive per conversation in any order; compare the k-th answer with the k-th post.
    arrivals = sorted(call_time for call_time in _arrival_times(stub, endpoint))
    answers = [arrival - post for arrival, post in zip(arrivals, sent)]
    print(f"{channel:9s} ack p50 {_ms(acks, 50):7.1f} ms  p99 {_ms(acks, 99):7.1f} ms   "
          f"answer p50 {_ms(answers, 50):7.1f} ms  p99 {_ms(answers, 99):7.1f} ms   "
          f"{len(answered)}/{messages} answered, {len(answered) / elapsed:6.1f} msg/s")


def _arrival_times(stub: StubServer, endpoint: str) -> list[float]:
    return [call.received for call in stub.to(endpoint)]


def _ms(values: list[float], percentile: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[percentile - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=25.0, help="webhook deliveries per second")
    parser.add_argument("--channels", default="slack,twilio,telegram")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the stub's access log
    print(f"{args.messages} messages per channel at {args.rate:g}/s")
    for channel in args.channels.split(","):
        run(channel, args.messages, args.rate)


if __name__ == "__main__":
    main()
