"""Webhook signatures checked by an independent implementation: the `standardwebhooks` package."""

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from runwayml import RunwayML
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from test_runwayml_sdk import PNG


@pytest.fixture
def receiver():
    got: "queue.Queue[tuple[dict, bytes]]" = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", got
    server.shutdown()


def next_event(got, timeout=30):
    headers, body = got.get(timeout=timeout)
    return headers, body


def test_callbacks_verify_with_standardwebhooks_and_survive_rotation(reelay, receiver):
    url, got = receiver
    made = json.loads(reelay.cli("account", "create", "--name", "hooks", "--credits", "1000", "--json"))
    secret = made["webhook_secret"]
    assert secret.startswith("whsec_")
    client = RunwayML(api_key=made["api_key"], base_url=reelay.base_url, max_retries=0)
    task = client.image_to_video.create(
        model="gen4_turbo",
        prompt_image=PNG,
        prompt_text="signed",
        ratio="1280:720",
        duration=5,
        extra_headers={"X-Reelay-Callback-Url": url},
    )

    seen = []
    while len(seen) < 2:
        headers, body = next_event(got)
        payload = Webhook(secret).verify(body, headers)
        assert payload["data"]["id"] == task.id
        seen.append(payload["type"])
        # Any change to the body breaks the signature.
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(body + b" ", headers)
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "A" * 43 + "=").verify(body, headers)
    assert seen == ["task.running", "task.succeeded"]

    # Rotation: the new and the old secret both verify during the grace period.
    rotated = json.loads(
        reelay.cli("webhook", "secret", "--account", made["account_id"], "--rotate", "--json")
    )
    new = rotated["webhook_secret"]
    assert new != secret
    client.image_to_video.create(
        model="gen4_turbo",
        prompt_image=PNG,
        prompt_text="rotated",
        ratio="1280:720",
        duration=5,
        extra_headers={"X-Reelay-Callback-Url": url},
    )
    headers, body = next_event(got)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(body, headers)["type"] == "task.running"
    assert Webhook(secret).verify(body, headers)["type"] == "task.running"
