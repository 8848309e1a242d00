"""Webhook signing, backoff and the guards on where messages are sent."""

import base64
import datetime
import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from microsoft_esd import webhooks

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdefghijklmn").decode()


def independent_signature(secret, msg_id, timestamp, body):
    """The Standard Webhooks signature, written here from the specification."""
    key = base64.b64decode(secret.split("_", 1)[1])
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def test_signature_is_the_specifications():
    body = webhooks.message_body(
        "license.delivered", "2025-01-01T00:00:00Z", {"license": {"id": 1}}
    )
    headers = webhooks.signed_headers(SECRET, "msg_1", 1735689600, body)
    assert headers["webhook-signature"] == independent_signature(SECRET, "msg_1", 1735689600, body)
    assert json.loads(body) == {
        "type": "license.delivered",
        "timestamp": "2025-01-01T00:00:00Z",
        "data": {"license": {"id": 1}},
    }


def test_reference_library_verifies_it():
    standardwebhooks = pytest.importorskip("standardwebhooks")
    body = webhooks.message_body("order.invoiced", "2025-01-01T00:00:00Z", {"order": {"id": 7}})
    now = datetime.datetime.now(datetime.timezone.utc).timestamp()
    secret = webhooks.new_secret()
    headers = webhooks.signed_headers(secret, "msg_2", now, body)
    assert standardwebhooks.Webhook(secret).verify(body, headers)["data"] == {"order": {"id": 7}}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(webhooks.new_secret()).verify(body, headers)


def test_new_secrets_are_random_whsec():
    first, second = webhooks.new_secret(), webhooks.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first[6:])) == 24


def test_backoff_is_capped_and_jittered():
    assert webhooks.retry_delay(1, rng=lambda: 0) == 2.5
    assert webhooks.retry_delay(1, rng=lambda: 1) == 5
    assert webhooks.retry_delay(3, rng=lambda: 1) == 20
    assert webhooks.retry_delay(40, rng=lambda: 1) == webhooks.MAX_DELAY
    assert webhooks.retry_delay(40, rng=lambda: 0) == webhooks.MAX_DELAY / 2
    start = datetime.datetime(2025, 1, 1)
    assert not webhooks.gives_up(None, start)
    assert not webhooks.gives_up(start, start + datetime.timedelta(hours=23, minutes=59))
    assert webhooks.gives_up(start, start + datetime.timedelta(hours=24))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "ftp://example.com/",
        "https://user:pw@example.com/",
        "https://example.com/#x",
        "https:///nohost",
        "https://example.com:0/",
        "x" * 3000,
        None,
    ],
)
def test_urls_refused(url):
    with pytest.raises(webhooks.UrlRefused):
        webhooks.check_url(url)


def test_plain_http_only_to_loopback_and_only_when_allowed():
    assert webhooks.check_url("https://example.com/hook").hostname == "example.com"
    assert webhooks.check_url("http://127.0.0.1:8000/h", allow_loopback=True).port == 8000
    with pytest.raises(webhooks.UrlRefused):
        webhooks.check_url("http://127.0.0.1:8000/h")
    with pytest.raises(webhooks.UrlRefused):
        webhooks.check_url("http://example.com/h", allow_loopback=True)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
    ],
)
def test_internal_addresses_refused(address):
    assert webhooks.address_refusal(address)


def test_public_addresses():
    assert webhooks.address_refusal("93.184.215.14") is None
    assert webhooks.address_refusal("2606:4700::1111") is None
    assert webhooks.address_refusal("127.0.0.1", allow_loopback=True) is None
    assert webhooks.address_refusal("10.0.0.1", allow_loopback=True)


def fake_resolver(*addresses):
    def resolve(host, port, **_options):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


def test_a_host_with_one_internal_address_is_refused():
    with pytest.raises(webhooks.UrlRefused, match="not a public address"):
        webhooks.public_addresses(
            "mixed.example", 443, resolve=fake_resolver("8.8.8.8", "10.0.0.1")
        )
    assert webhooks.public_addresses("ok.example", 443, resolve=fake_resolver("8.8.8.8")) == [
        "8.8.8.8"
    ]


class Recorder:
    """An HTTP server on 127.0.0.1 answering ``status`` (and ``location`` if given)."""

    def __init__(self, status=204, location=None):
        self.requests = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers["Content-Length"])
                recorder.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_deliver_posts_signed_and_never_follows_redirects():
    target = Recorder()
    redirecting = Recorder(status=302, location=target.url + "/stolen")
    try:
        body = b'{"type":"x"}'
        headers = webhooks.signed_headers(SECRET, "msg_3", 1, body)
        answer = webhooks.deliver(redirecting.url + "/h?a=1", headers, body, allow_loopback=True)
        assert (answer.status, answer.ok) == (302, False)
        assert not target.requests
        path, sent, received = redirecting.requests[0]
        assert path == "/h?a=1" and received == body
        assert sent["webhook-id"] == "msg_3" and sent["webhook-signature"].startswith("v1,")
        assert webhooks.deliver(target.url, headers, body, allow_loopback=True).ok
        refused = webhooks.deliver(target.url, headers, body)
        assert refused.status is None and refused.error.startswith("refused")
    finally:
        target.close()
        redirecting.close()


def test_deliver_reports_an_unreachable_endpoint():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = webhooks.deliver(
        f"http://127.0.0.1:{port}/", {}, b"{}", timeout=2, allow_loopback=True
    )
    assert answer.status is None and answer.error


def test_a_group_stops_at_its_first_failure():
    sent = []

    def send(attempt):
        sent.append(attempt.key)
        return webhooks.Answer(status=500 if attempt.key == 2 else 200)

    attempts = [webhooks.Attempt(key, "u", {}, b"") for key in (1, 2, 3)]
    answers = webhooks.send_groups([attempts, [webhooks.Attempt(9, "v", {}, b"")]], send)
    assert sorted(answers) == [1, 2, 9] and 3 not in sent
