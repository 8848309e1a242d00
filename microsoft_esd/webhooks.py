"""Webhooks as the Standard Webhooks specification says, and how they are sent.

A message is a JSON body ``{"type", "timestamp", "data"}`` with three headers: ``webhook-id``
(the message's id, the same on every attempt), ``webhook-timestamp`` (the attempt's Unix time)
and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``
under the endpoint's secret, ``whsec_`` and base64 bytes).

Targets are URLs a reseller chose, so sending one is guarded: HTTPS only, no user name or
password in the URL, the host resolved here and every address it resolves to a public one (no
loopback, private, link-local, multicast or reserved address), the connection made to that very
address (a DNS answer cannot change between the check and the connection), no redirect followed,
a timeout on every socket operation and the answer read up to a few kilobytes.
"""

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import random
import secrets
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

EVENTS = (
    "license.delivered",
    "license.failed",
    "license.returned",
    "order.invoiced",
    "price.changed",
)
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24
# Retries: 5 s, 10 s, 20 s... capped at one hour, each jittered, for 24 hours.
FIRST_DELAY = 5
MAX_DELAY = 3600
RETRY_WINDOW_HOURS = 24
TIMEOUT = 10
MAX_URL_LENGTH = 2048
ANSWER_BYTES = 2048
USER_AGENT = "microsoft_esd-webhooks/1"


class UrlRefused(ValueError):
    """A webhook target that is not sent to, and why."""


def new_secret():
    """A new endpoint secret: ``whsec_`` and 24 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_bytes(secret):
    if not secret or not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX) :])


def sign(secret, msg_id, timestamp, body):
    """The ``webhook-signature`` of ``body`` (bytes) for message ``msg_id`` at ``timestamp``."""
    signed = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret, msg_id, timestamp, body):
    """The headers of one attempt of a message."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def message_body(event_type, timestamp_iso, data):
    """The body of a message: compact JSON, keys sorted (the bytes that are signed)."""
    payload = {"type": event_type, "timestamp": timestamp_iso, "data": data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def retry_delay(attempts, rng=random.random):
    """Seconds before the next attempt after ``attempts`` failed ones: 5 s doubling up to an
    hour, the second half of it jittered."""
    base = min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, attempts - 1))
    return round(base / 2 + rng() * base / 2, 1)


def gives_up(first_failure, now, window_hours=RETRY_WINDOW_HOURS):
    """Whether failures since ``first_failure`` (a datetime, or None) have lasted the window."""
    return bool(first_failure) and (now - first_failure).total_seconds() >= window_hours * 3600


def check_url(url, allow_loopback=False):
    """The parts of ``url`` if it may be a webhook target; else UrlRefused saying why.

    HTTPS only; ``allow_loopback`` (tests) also lets plain HTTP reach 127.0.0.1 or ::1.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"give an https:// URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"not a valid URL ({exc})") from None
    if parts.username or parts.password:
        raise UrlRefused("a URL with a user name or password is refused")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.fragment:
        raise UrlRefused("a URL with a fragment (#...) is refused")
    if parts.scheme == "http" and allow_loopback and _is_loopback_literal(parts.hostname):
        return parts
    if parts.scheme != "https":
        raise UrlRefused("only https:// URLs are accepted")
    if port == 0:
        raise UrlRefused("port 0 is refused")
    return parts


def _is_loopback_literal(host):
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_refusal(address, allow_loopback=False):
    """Why ``address`` (an IP string) may not be sent to, or None when it is public."""
    ip = ipaddress.ip_address(address.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped:
        ip = mapped
    if ip.is_loopback and allow_loopback:
        return None
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return f"{ip} is not a public address"
    return None


def public_addresses(host, port, allow_loopback=False, resolve=socket.getaddrinfo):
    """The addresses of ``host``, all public; UrlRefused if one is not (or none resolves).

    ``allow_loopback`` (tests) lets a loopback address written as such (127.0.0.1, ::1) pass,
    never a name that resolves to one."""
    allow_loopback = allow_loopback and _is_loopback_literal(host)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"{host} does not resolve ({exc})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise UrlRefused(f"{host} does not resolve")
    for address in addresses:
        refusal = address_refusal(address, allow_loopback)
        if refusal:
            raise UrlRefused(f"{host} resolves to {refusal}")
    return addresses


@dataclass(frozen=True)
class Answer:
    """What one attempt got: an HTTP status, or an error before any (then status is None)."""

    status: int = None
    text: str = ""
    error: str = None

    @property
    def ok(self):
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to one address already checked, whatever DNS says now."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to one address already checked; the certificate is verified for the
    URL's host name."""

    def __init__(self, host, port, address, timeout, context):
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def deliver(
    url,
    headers,
    body,
    timeout=TIMEOUT,
    allow_loopback=False,
    resolve=socket.getaddrinfo,
    cafile=None,
):
    """POST ``body`` to ``url`` once, guarded as the module says; the Answer (never raises)."""
    try:
        parts = check_url(url, allow_loopback)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        addresses = public_addresses(parts.hostname, port, allow_loopback, resolve)
    except UrlRefused as exc:
        return Answer(error=f"refused: {exc}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    error = None
    for address in addresses:
        if https:
            context = ssl.create_default_context(cafile=cafile)
            conn = _PinnedHTTPSConnection(parts.hostname, port, address, timeout, context)
        else:
            conn = _PinnedHTTPConnection(parts.hostname, port, address, timeout)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read(ANSWER_BYTES).decode("utf-8", "replace")
            return Answer(status=response.status, text=text)
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            conn.close()
    return Answer(error=error)


@dataclass(frozen=True)
class Attempt:
    """One message to send: ``key`` is opaque here (the delivery's id)."""

    key: int
    url: str
    headers: dict
    body: bytes


def send_groups(groups, send, parallelism=4):
    """Send each group of attempts (one endpoint's, in order) in a thread of its own, at most
    ``parallelism`` at once; a group stops at its first failure (the endpoint is down: its next
    messages wait for their retry). Returns {key: Answer} of the attempts made."""
    answers = {}

    def run(group):
        for attempt in group:
            answer = send(attempt)
            answers[attempt.key] = answer
            if not answer.ok:
                return

    groups = [group for group in groups if group]
    if not groups:
        return answers
    with ThreadPoolExecutor(max_workers=max(1, min(parallelism, len(groups)))) as pool:
        for future in [pool.submit(run, group) for group in groups]:
            future.result()
    return answers
