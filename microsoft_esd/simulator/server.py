"""The CIS simulator's HTTPS server: the contract, the Azure AD token endpoint, an admin surface."""

import base64
import contextlib
import json
import logging
import random
import re
import secrets
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .. import contract
from .state import SimError, State

_logger = logging.getLogger(__name__)

ADMIN_HEADER = "X-Simulator-Admin"
PAGE_SIZE = 100
TOKEN_LIFETIME = 3599
CLOCK_SKEW_SECONDS = 300  # what Azure AD tolerates between the client and itself


class Faults:
    """Faults to inject, set through the admin surface. Counted faults hit the next N requests."""

    FIELDS = (
        "latency_ms",  # added before each API answer
        "error_rate",  # share of API requests answered 503
        "rate_limit_rate",  # share of API requests answered 429 with Retry-After
        "drop_rate",  # share of API requests processed, then their connection dropped
        "rate_limit",  # next N API requests answered 429 with Retry-After
        "retry_after",  # seconds, for rate_limit
        "fail",  # next N API requests answered with fail_status
        "fail_status",
        "fail_skip",  # let this many matching requests through before "fail" starts
        "timeout",  # next N: the request is processed, then the answer is held timeout_seconds
        "timeout_seconds",
        "malformed",  # next N: a 200 whose body is not JSON
        "drop_after_commit",  # next N: the request is processed, then the connection is dropped
        "paths",  # only requests whose path contains this (e.g. "orders"); empty = every API path
    )

    def __init__(self):
        self.lock = threading.Lock()
        self.rng = random.Random()
        self.clear()

    def clear(self):
        with self.lock:
            self.values = {
                "latency_ms": 0,
                "error_rate": 0.0,
                "rate_limit_rate": 0.0,
                "drop_rate": 0.0,
                "rate_limit": 0,
                "retry_after": 1,
                "fail": 0,
                "fail_status": 503,
                "fail_skip": 0,
                "timeout": 0,
                "timeout_seconds": 5.0,
                "malformed": 0,
                "drop_after_commit": 0,
                "paths": "",
            }

    def update(self, values):
        unknown = set(values) - set(self.FIELDS)
        if unknown:
            raise SimError(422, "InvalidRequest", f"unknown faults: {', '.join(sorted(unknown))}")
        with self.lock:
            self.values.update(values)
            return dict(self.values)

    def snapshot(self):
        with self.lock:
            return dict(self.values)

    def applies(self, path):
        return self.values["paths"] in path

    def take(self, name, path):
        """Consume one of a counted fault for this request; True when it fires."""
        with self.lock:
            if name == "fail" and self.values["fail"] > 0 and self.applies(path):
                if self.values["fail_skip"] > 0:
                    self.values["fail_skip"] -= 1
                    return False
            if self.values[name] > 0 and self.applies(path):
                self.values[name] -= 1
                return True
            return False

    def random_error(self, path, rate="error_rate"):
        with self.lock:
            return self.applies(path) and self.rng.random() < self.values[rate]


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, state, ssl_context):
        self.state = state
        self.faults = Faults()
        self.ssl_context = ssl_context
        self.access_tokens = {}
        # cis_requests: what a client of CIS sends (API and Azure AD), not the admin surface
        self.stats = {"connections": 0, "tokens_issued": 0, "requests": 0, "cis_requests": 0}
        self.stats_lock = threading.Lock()
        super().__init__(address, Handler)

    def count(self, key):
        with self.stats_lock:
            self.stats[key] += 1

    def process_request(self, request, client_address):
        self.count("connections")
        return super().process_request(request, client_address)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread. Headers and body are
        # written separately: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms per answer.
        try:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.server_address[1]}"

    @property
    def token_endpoint(self):
        return f"{self.base_url}/{self.state.data['tenant']}/oauth2/v2.0/token"


class DropConnection(Exception):
    """Close the connection without answering."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "esd-simulator/1"

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        # (the parameter names of BaseHTTPRequestHandler.log_message, which this overrides)
        _logger.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ plumbing
    def _body(self):
        return self.raw_body

    def _json_body(self):
        raw = self._body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise SimError(400, "InvalidJson", "the request body is not JSON") from None

    def _send(self, status, payload=None, headers=None, raw=None):
        body = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        correlation = self.headers.get(contract.HEADER_CORRELATION_ID)
        if correlation:
            self.send_header(contract.HEADER_CORRELATION_ID, correlation)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status, code, message, headers=None):
        self._send(
            status,
            {
                "code": code,
                "message": message,
                "correlationId": self.headers.get(contract.HEADER_CORRELATION_ID),
            },
            headers,
        )

    def _drop(self):
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have gone already
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        server = self.server
        server.count("requests")
        if not self.path.startswith("/admin"):
            server.count("cis_requests")
        # Read the whole body first: an early answer must not leave it in the keep-alive stream.
        length = int(self.headers.get("Content-Length") or 0)
        self.raw_body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        path = url.path
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            for route_method, pattern, handler in ROUTES:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    handler(self, query, **match.groupdict())
                    return
            raise SimError(404, "NotFound", f"no route for {method} {path}")
        except SimError as exc:
            self._error(exc.status, exc.code, exc.message)
        except DropConnection:
            self._drop()
        except Exception:  # a bug in the simulator must not kill the connection thread silently
            _logger.exception("simulator error on %s %s", method, path)
            self._error(500, "InternalError", "the simulator failed")

    # ------------------------------------------------------------------ Azure AD
    def openid_configuration(self, query, tenant):
        state = self.server.state
        if tenant != state.data["tenant"]:
            raise SimError(400, "invalid_tenant", f"tenant {tenant} is unknown")
        base = f"{self.server.base_url}/{tenant}"
        self._send(
            200,
            {
                "issuer": f"{base}/v2.0",
                "token_endpoint": self.server.token_endpoint,
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "token"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            },
        )

    def token(self, query, tenant):
        state = self.server.state
        form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}

        def refuse(status, error, description):
            self._send(status, {"error": error, "error_description": description})

        if tenant != state.data["tenant"]:
            return refuse(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", "AADSTS70003: only client_credentials.")
        if form.get("client_id") != state.data["client_id"]:
            return refuse(
                400, "unauthorized_client", "AADSTS700016: Application not found in the directory."
            )
        expected_scope = f"{state.data['resource_api']}/.default"
        if expected_scope not in (form.get("scope") or "").split():
            return refuse(400, "invalid_scope", f"AADSTS70011: the scope must be {expected_scope}.")
        assertion = form.get("client_assertion") or ""
        error = self._check_assertion(assertion)
        if error:
            return refuse(401, "invalid_client", error)
        access_token = secrets.token_urlsafe(32)
        self.server.access_tokens[access_token] = time.time() + TOKEN_LIFETIME
        self.server.count("tokens_issued")
        self._send(
            200,
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": access_token,
            },
        )

    def _check_assertion(self, assertion):
        """Verify a client assertion against the registered certificate; an AAD message or None."""
        state = self.server.state
        cert = x509.load_pem_x509_certificate(state.data["client_certificate_pem"].encode())
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return "AADSTS50027: the client assertion is not a valid JWT."
        sha1 = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA1())).rstrip(b"=").decode()
        sha256 = base64.urlsafe_b64encode(cert.fingerprint(hashes.SHA256())).rstrip(b"=").decode()
        alg = header.get("alg")
        if alg == "RS256":
            matches = (header.get("x5t") or "").rstrip("=") == sha1
        elif alg == "PS256":
            matches = (header.get("x5t#S256") or "").rstrip("=") == sha256
        else:
            return f"AADSTS5002730: unsupported assertion algorithm {alg}."
        if not matches:
            return (
                "AADSTS700027: the certificate with this thumbprint is not registered for the "
                "application."
            )
        try:
            claims = jwt.decode(
                assertion,
                cert.public_key(),
                algorithms=[alg],
                audience=self.server.token_endpoint,
                issuer=state.data["client_id"],
                options={"require": ["exp", "aud", "iss", "sub"]},
                # Azure AD's clock skew. msal's iat is a float: PyJWT before 2.7 compares it with
                # a whole-second now and would refuse an assertion signed this very second.
                leeway=CLOCK_SKEW_SECONDS,
            )
        except jwt.PyJWTError as exc:
            return f"AADSTS700027: client assertion failed signature validation ({exc})."
        if claims.get("sub") != state.data["client_id"]:
            return "AADSTS700023: the assertion subject is not the client."
        return None

    # ------------------------------------------------------------------ CIS API
    def _api(self, channel_id, path, *, committing=False):
        """Auth, channel and faults common to every API call. Returns a callable to finish."""
        server = self.server
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        expiry = server.access_tokens.get(token)
        if not expiry or expiry < time.time():
            raise SimError(401, "InvalidToken", "the access token is missing, unknown or expired")
        if channel_id != server.state.data["channel_id"]:
            raise SimError(403, "ChannelNotAllowed", f"the client may not use channel {channel_id}")
        faults = server.faults
        latency = faults.snapshot()["latency_ms"]
        if latency and faults.applies(path):
            time.sleep(latency / 1000)
        if faults.take("rate_limit", path) or faults.random_error(path, "rate_limit_rate"):
            retry_after = faults.snapshot()["retry_after"]
            raise _RateLimited(retry_after)
        if faults.take("fail", path):
            status = int(faults.snapshot()["fail_status"])
            raise SimError(status, "InjectedFailure", "injected failure")
        if faults.random_error(path):
            raise SimError(503, "ServiceUnavailable", "injected random failure")
        if committing and method_is_post(self) and not self.headers.get(contract.HEADER_REQUEST_ID):
            raise SimError(400, "MissingRequestId", f"{contract.HEADER_REQUEST_ID} is required")

    def _answer(self, path, status, payload):
        """Send an API answer, applying the post-processing faults (timeout, malformed, drop)."""
        faults = self.server.faults
        if faults.take("drop_after_commit", path) or faults.random_error(path, "drop_rate"):
            raise DropConnection
        if faults.take("timeout", path):
            time.sleep(float(faults.snapshot()["timeout_seconds"]))
            raise DropConnection
        if faults.take("malformed", path):
            self._send(status, raw=b'{"orderId": "ORD-BROKEN", "licenses": [')
            return
        self._send(status, payload)

    def catalog(self, query, channel_id):
        path = self.path
        try:
            self._api(channel_id, path)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        state = self.server.state
        country = query.get("country") or state.data["country"]
        language = query.get("language") or state.data["language"]
        items = state.catalog(country, language)
        start = _decode_cursor(query.get("continuationToken"))
        page = items[start : start + PAGE_SIZE]
        nxt = start + PAGE_SIZE
        payload = {
            "items": page,
            "continuationToken": _encode_cursor(nxt) if nxt < len(items) else None,
        }
        self._answer(path, 200, payload)

    def accounts(self, query, channel_id):
        try:
            self._api(channel_id, self.path, committing=True)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        body = self._json_body()
        request_id = self.headers.get(contract.HEADER_REQUEST_ID)
        self._answer(self.path, 201, self.server.state.create_account(body, request_id))

    def account(self, query, channel_id, account_id):
        try:
            self._api(channel_id, self.path)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        self._answer(self.path, 200, self.server.state.get_account(account_id))

    def orders(self, query, channel_id):
        try:
            self._api(channel_id, self.path, committing=True)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        body = self._json_body()
        request_id = self.headers.get(contract.HEADER_REQUEST_ID)
        response = self.server.state.create_order(request_id, body)
        self._answer(self.path, 201, response)

    def license(self, query, channel_id, license_id):
        try:
            self._api(channel_id, self.path)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        self._answer(self.path, 200, self.server.state.get_license(license_id))

    def licenses(self, query, channel_id):
        try:
            self._api(channel_id, self.path)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        since = contract.parse_datetime(query.get("modifiedSince"), "modifiedSince")
        rows = self.server.state.changed_licenses(since)
        start = _decode_cursor(query.get("continuationToken"))
        nxt = start + PAGE_SIZE
        payload = {
            "items": rows[start:nxt],
            "continuationToken": _encode_cursor(nxt) if nxt < len(rows) else None,
        }
        self._answer(self.path, 200, payload)

    def return_license(self, query, channel_id, license_id):
        try:
            self._api(channel_id, self.path, committing=True)
        except _RateLimited as exc:
            return self._rate_limited(exc)
        self._body()
        request_id = self.headers.get(contract.HEADER_REQUEST_ID)
        response = self.server.state.return_license(request_id, license_id)
        self._answer(self.path, 200, response)

    def _rate_limited(self, exc):
        self._error(
            429,
            "TooManyRequests",
            "rate limit exceeded",
            {contract.HEADER_RETRY_AFTER: str(int(exc.retry_after))},
        )

    # ------------------------------------------------------------------ admin surface
    def _admin(self):
        if self.headers.get(ADMIN_HEADER) != self.server.state.data["admin_token"]:
            raise SimError(401, "AdminOnly", f"the {ADMIN_HEADER} header is missing or wrong")

    def admin_stats(self, query):
        self._admin()
        state = self.server.state
        with self.server.stats_lock:
            stats = dict(self.server.stats)
        stats.update(
            accounts=len(state.data["accounts"]),
            orders=len(state.data["orders"]),
            licenses=len(state.data["licenses"]),
        )
        self._send(200, stats)

    def admin_faults(self, query):
        self._admin()
        if self.command == "DELETE":
            self.server.faults.clear()
            return self._send(200, self.server.faults.snapshot())
        if self.command == "POST":
            return self._send(200, self.server.faults.update(self._json_body()))
        self._send(200, self.server.faults.snapshot())

    def admin_redeem(self, query, license_id):
        self._admin()
        self._send(200, self.server.state.redeem(license_id))

    def admin_force(self, query, license_id):
        self._admin()
        body = self._json_body()
        self._send(
            200,
            self.server.state.force_status(
                license_id, body.get("tokenStatus"), body.get("returnStatus")
            ),
        )

    def admin_catalog(self, query):
        self._admin()
        if self.command == "DELETE":
            self.server.state.reset_catalogs()
            return self._send(200, {"reset": True})
        body = self._json_body()
        state = self.server.state
        item = state.change_catalog(
            body.get("op"),
            body.get("country") or state.data["country"],
            body.get("language") or state.data["language"],
            product_id=body.get("productId"),
            title=body.get("title"),
            amount=body.get("amount"),
        )
        self._send(200, item)

    def admin_licenses(self, query):
        self._admin()
        self._send(200, {"items": self.server.state.changed_licenses(None)})

    def admin_accounts(self, query):
        self._admin()
        with self.server.state.lock:
            self._send(200, {"items": list(self.server.state.data["accounts"].values())})


class _RateLimited(Exception):
    def __init__(self, retry_after):
        super().__init__(retry_after)
        self.retry_after = retry_after


def method_is_post(handler):
    return handler.command == "POST"


def _encode_cursor(offset):
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(token):
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])
    except (ValueError, IndexError):
        raise SimError(
            400, "InvalidContinuationToken", "the continuation token is invalid"
        ) from None


_CH = r"/v1/channels/(?P<channel_id>[^/]+)"
ROUTES = [
    (
        "GET",
        re.compile(r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration"),
        Handler.openid_configuration,
    ),
    ("POST", re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token"), Handler.token),
    ("GET", re.compile(_CH + r"/catalog"), Handler.catalog),
    ("POST", re.compile(_CH + r"/accounts"), Handler.accounts),
    ("GET", re.compile(_CH + r"/accounts/(?P<account_id>[^/]+)"), Handler.account),
    ("POST", re.compile(_CH + r"/orders"), Handler.orders),
    ("GET", re.compile(_CH + r"/licenses"), Handler.licenses),
    ("GET", re.compile(_CH + r"/licenses/(?P<license_id>[^/]+)"), Handler.license),
    ("POST", re.compile(_CH + r"/licenses/(?P<license_id>[^/]+)/return"), Handler.return_license),
    ("GET", re.compile(r"/admin/stats"), Handler.admin_stats),
    ("GET", re.compile(r"/admin/faults"), Handler.admin_faults),
    ("POST", re.compile(r"/admin/faults"), Handler.admin_faults),
    ("DELETE", re.compile(r"/admin/faults"), Handler.admin_faults),
    ("GET", re.compile(r"/admin/licenses"), Handler.admin_licenses),
    ("GET", re.compile(r"/admin/accounts"), Handler.admin_accounts),
    ("POST", re.compile(r"/admin/licenses/(?P<license_id>[^/]+)/redeem"), Handler.admin_redeem),
    ("POST", re.compile(r"/admin/licenses/(?P<license_id>[^/]+)/status"), Handler.admin_force),
    ("POST", re.compile(r"/admin/catalog"), Handler.admin_catalog),
    ("DELETE", re.compile(r"/admin/catalog"), Handler.admin_catalog),
]


class Simulator:
    """A running simulator: ``Simulator(dir).start()`` in a thread, or ``serve_forever()``."""

    def __init__(self, state_dir, port=0, *, extra_products=0, country="US", language="en-US"):
        self.state = State(
            state_dir, extra_products=extra_products, country=country, language=language
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.state.server_cert_path, self.state.server_key_path)
        self.config_path = Path(state_dir) / "instance.json"
        self.config_path.unlink(missing_ok=True)
        self.server = SimulatorServer(("127.0.0.1", port), self.state, context)
        self.state.data["service_url"] = self.server.base_url
        self.state.save()
        self._thread = None
        self._write_instance_json()

    @property
    def port(self):
        return self.server.server_address[1]

    @property
    def url(self):
        return self.server.base_url

    def instance_config(self):
        data = self.state.data
        return {
            "service_url": self.url,
            "resource_api": data["resource_api"],
            "tenant": data["tenant"],
            "authority": f"{self.url}/{data['tenant']}",
            "channel_id": data["channel_id"],
            "client_id": data["client_id"],
            "certificate_path": str(self.state.client_pfx_path),
            "certificate_password": data["certificate_password"],
            "ca_bundle": str(self.state.ca_path),
            "country": data["country"],
            "language": data["language"],
            "admin_url": f"{self.url}/admin",
            "admin_token": data["admin_token"],
        }

    def _write_instance_json(self):
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.instance_config(), indent=2) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.config_path)

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self.server.serve_forever()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
