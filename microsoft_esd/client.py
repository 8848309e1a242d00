"""The CIS ESD client: every call goes through one request helper.

One ``requests.Session`` with keep-alive, connect and read timeouts, ``MS-CorrelationId`` /
``MS-RequestId`` headers, retries with jittered exponential backoff that honours ``Retry-After``,
a total deadline per call and, when the instance has a rate limit, one pace shared by every
caller (:mod:`.pacing`: each request waits for its slot; a Retry-After holds the pace for all).
POSTs are retried only with the same request id, which CIS treats as an idempotency key: a
retried order returns the same license, never a second one.
"""

import email.utils
import logging
import random
import threading
import time
import uuid
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from . import contract
from .auth import TokenProvider
from .certificate import load_certificate, load_certificate_file
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
    ValidationError,
    redact,
)

_logger = logging.getLogger(__name__)


def new_id():
    return str(uuid.uuid4())


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now or time.time()))


class CisClient:
    """Client of one CIS instance (one country/region)."""

    def __init__(
        self,
        config,
        *,
        certificate=None,
        session=None,
        token_provider=None,
        connect_timeout=5.0,
        read_timeout=30.0,
        deadline=60.0,
        max_attempts=5,
        backoff_base=0.5,
        backoff_cap=8.0,
        pool_size=10,
        pacer=None,
        sleep=time.sleep,
        rng=random.random,
    ):
        self.config = config
        self.pacer = pacer  # pacing.Pacer: the instance's shared pace, None for no limit
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = rng
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0}
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
            session.mount("https://", adapter)
        self.session = session
        if token_provider is None:
            certificate = certificate or self._load_certificate()
            token_provider = TokenProvider(
                config, certificate, session, timeout=(connect_timeout, read_timeout)
            )
        self.tokens = token_provider

    def _load_certificate(self):
        cfg = self.config
        if cfg.certificate_data:
            return load_certificate(
                cfg.certificate_data, cfg.certificate_password, expected_thumbprint=cfg.thumbprint
            )
        if cfg.certificate_path:
            return load_certificate_file(
                cfg.certificate_path, cfg.certificate_password, expected_thumbprint=cfg.thumbprint
            )
        raise ConfigurationError("no certificate is configured: upload the PFX or PEM file")

    # ------------------------------------------------------------------ lifecycle
    def close(self):
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def token_acquisitions(self):
        return self.tokens.acquisitions

    # ------------------------------------------------------------------ the one request helper
    def _request(
        self, method, path, what, *, params=None, body=None, request_id=None, correlation_id=None
    ):
        """Send one logical request, retrying what is transient; return the decoded JSON body."""
        url = self.config.service_url.rstrip("/") + path
        request_id = request_id or new_id()
        correlation_id = correlation_id or new_id()
        deadline_at = time.monotonic() + self.deadline
        host = urlsplit(url).netloc
        reauthenticated = False
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline_at - time.monotonic()
            if remaining <= 0:
                raise UnavailableError(
                    f"CIS at {host} did not complete {what} within {self.deadline:.0f}s",
                    correlation_id=correlation_id,
                )
            # The access token first (fetching one is a request of its own): the request then
            # leaves as soon as its slot comes.
            headers = {
                "Authorization": f"Bearer {self.tokens.get()}",
                contract.HEADER_CORRELATION_ID: correlation_id,
                contract.HEADER_REQUEST_ID: request_id,
                contract.HEADER_LANGUAGE: self.config.language,
                "Accept": "application/json",
            }
            if self.pacer is not None:
                remaining = deadline_at - time.monotonic()
                if remaining <= 0 or not self.pacer.acquire(max_wait=remaining):
                    raise UnavailableError(
                        f"CIS at {host}: {what} could not be sent within {self.deadline:.0f}s at "
                        f"the instance's pace of {self.pacer.rate:g} requests a second",
                        correlation_id=correlation_id,
                    )
                remaining = max(0.001, deadline_at - time.monotonic())
            timeout = (min(self.connect_timeout, remaining), min(self.read_timeout, remaining))
            retry_after = None
            with self._stats_lock:
                self.stats["requests"] += 1
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=timeout,
                    # per request: REQUESTS_CA_BUNDLE would override Session.verify
                    verify=self.config.verify,
                )
            except requests.Timeout:
                error = UnavailableError(
                    f"CIS at {host} did not answer {what} in time", correlation_id=correlation_id
                )
            except requests.exceptions.SSLError:
                raise UnavailableError(
                    f"the TLS certificate of CIS at {host} is not trusted: check the service URL "
                    "and the CA bundle",
                    correlation_id=correlation_id,
                ) from None
            except requests.ConnectionError:
                error = UnavailableError(
                    f"cannot connect to CIS at {host} for {what}", correlation_id=correlation_id
                )
            else:
                status = response.status_code
                if 200 <= status < 300:
                    try:
                        return response.json()
                    except ValueError:
                        error = ProtocolError(
                            f"CIS answered {what} with a body that is not JSON",
                            correlation_id=correlation_id,
                            status=status,
                        )
                        error.transient = True  # an idempotent retry may get a clean answer
                else:
                    if status == 401 and not reauthenticated:
                        reauthenticated = True
                        self.tokens.invalidate()
                        attempt -= 1
                        continue
                    error, retry_after = self._http_error(response, what, correlation_id)
            if not error.transient or attempt >= self.max_attempts:
                raise error
            delay = self._delay(attempt, retry_after)
            if time.monotonic() + delay >= deadline_at:
                raise error
            if retry_after is not None and self.pacer is not None:
                # Every request to this instance waits, not only this one; this one's next
                # slot comes after the wait, in turn with the others.
                self.pacer.hold(retry_after)
                delay = 0
            _logger.info(
                "CIS %s: attempt %d failed (%s), retrying in %.2fs [correlation %s]",
                what,
                attempt,
                error.message,
                delay,
                correlation_id,
            )
            with self._stats_lock:
                self.stats["retries"] += 1
            if delay:
                self._sleep(delay)

    def _delay(self, attempt, retry_after):
        if retry_after is not None:
            return retry_after * (1 + 0.1 * self._rng())
        return self._rng() * min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)) + 0.05

    def _http_error(self, response, what, correlation_id):
        status = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        code, message, cis_correlation = contract.parse_error(payload)
        correlation_id = cis_correlation or correlation_id
        detail = f": {redact(message)}" if message else ""
        kwargs = {"correlation_id": correlation_id, "status": status, "code": code}
        retry_after = None
        if status in (401, 403):
            reason = f"{status}, {code}" if code else str(status)
            error = AuthenticationError(
                f"CIS refused {what} ({reason}){detail}. Check that the client id is enabled for "
                "this channel and the resource API is right",
                **kwargs,
            )
        elif status == 404:
            error = NotFoundError(f"CIS does not know {what}{detail}", **kwargs)
        elif status == 409:
            error = ConflictError(f"CIS refused {what} ({code or 'conflict'}){detail}", **kwargs)
        elif status in (400, 422):
            error = ValidationError(f"CIS rejected {what} as invalid{detail}", **kwargs)
        elif status == 429:
            retry_after = parse_retry_after(response.headers.get(contract.HEADER_RETRY_AFTER))
            error = RateLimitedError(
                f"CIS is rate limiting {what}"
                + (f"; it asks to wait {retry_after:.0f}s" if retry_after is not None else ""),
                retry_after=retry_after,
                **kwargs,
            )
        elif status >= 500:
            error = UnavailableError(f"CIS failed on {what} ({status}){detail}", **kwargs)
        else:
            error = ProtocolError(f"CIS answered {what} with an unexpected {status}", **kwargs)
        return error, retry_after

    # ------------------------------------------------------------------ operations
    def catalog_page(
        self, country=None, language=None, continuation_token=None, correlation_id=None
    ):
        country = country or self.config.country
        language = language or self.config.language
        payload = self._request(
            "GET",
            contract.catalog_path(self.config.channel_id),
            f"the catalog for {country}/{language}",
            params=contract.catalog_query(country, language, continuation_token),
            correlation_id=correlation_id,
        )
        return contract.Page.from_wire(payload, contract.CatalogItem, "catalog page")

    def iter_catalog(self, country=None, language=None, correlation_id=None):
        """Yield every catalog item, following continuation tokens."""
        correlation_id = correlation_id or new_id()
        token, seen = None, set()
        while True:
            page = self.catalog_page(country, language, token, correlation_id)
            yield from page.items
            token = page.continuation_token
            if not token:
                return
            if token in seen:
                raise ProtocolError("CIS sent the same catalog continuation token twice")
            seen.add(token)

    def create_account(
        self,
        external_id,
        role,
        company_name,
        email,
        country=None,
        language=None,
        request_id=None,
        correlation_id=None,
    ):
        if role not in contract.WIRE_ACCOUNT_ROLE:
            raise ValueError(f"role must be one of {sorted(contract.WIRE_ACCOUNT_ROLE)}")
        body = contract.account_body(
            external_id,
            role,
            company_name,
            email,
            country or self.config.country,
            language or self.config.language,
        )
        payload = self._request(
            "POST",
            contract.accounts_path(self.config.channel_id),
            f"the account of {company_name}",
            body=body,
            request_id=request_id,
            correlation_id=correlation_id,
        )
        return contract.Account.from_wire(payload)

    def order_license(
        self,
        product_id,
        customer_account_id,
        reseller_account_id=None,
        external_reference=None,
        request_id=None,
        correlation_id=None,
    ):
        """Order one license. Pass the same ``request_id`` again to get the same order back."""
        payload = self._request(
            "POST",
            contract.orders_path(self.config.channel_id),
            f"the order of product {product_id}",
            body=contract.order_body(
                product_id, customer_account_id, reseller_account_id, external_reference
            ),
            request_id=request_id,
            correlation_id=correlation_id,
        )
        return contract.Order.from_wire(payload)

    def get_license(self, license_id, correlation_id=None):
        payload = self._request(
            "GET",
            contract.license_path(self.config.channel_id, license_id),
            f"license {license_id}",
            correlation_id=correlation_id,
        )
        return contract.License.from_wire(payload)

    def iter_license_changes(self, modified_since, correlation_id=None):
        """Yield every license changed since ``modified_since`` (bulk refresh)."""
        return self._iter_license_pages(modified_since, "the license changes", correlation_id)

    def iter_licenses(self, correlation_id=None):
        """Yield every license CIS knows for the channel, whoever sold it (an import)."""
        return self._iter_license_pages(None, "the licenses of the channel", correlation_id)

    def _iter_license_pages(self, modified_since, what, correlation_id=None):
        correlation_id = correlation_id or new_id()
        token, seen = None, set()
        while True:
            payload = self._request(
                "GET",
                contract.licenses_path(self.config.channel_id),
                what,
                params=contract.changes_query(modified_since, token),
                correlation_id=correlation_id,
            )
            page = contract.Page.from_wire(payload, contract.License, "license page")
            yield from page.items
            token = page.continuation_token
            if not token:
                return
            if token in seen:
                raise ProtocolError("CIS sent the same license continuation token twice")
            seen.add(token)

    def get_account(self, account_id, correlation_id=None):
        """The account ``account_id``: its role and who it is (company, email, country)."""
        payload = self._request(
            "GET",
            contract.account_path(self.config.channel_id, account_id),
            f"account {account_id}",
            correlation_id=correlation_id,
        )
        return contract.Account.from_wire(payload)

    def return_license(self, license_id, request_id=None, correlation_id=None):
        payload = self._request(
            "POST",
            contract.return_path(self.config.channel_id, license_id),
            f"the return of license {license_id}",
            body={},
            request_id=request_id,
            correlation_id=correlation_id,
        )
        return contract.License.from_wire({"licenseId": license_id, **payload})

    def check(self):
        """Authenticate and read one catalog page; return a small health report."""
        started = time.monotonic()
        page = self.catalog_page()
        return {
            "authenticated": True,
            "catalogItems": len(page.items),
            "morePages": bool(page.continuation_token),
            "elapsedMs": round((time.monotonic() - started) * 1000),
        }
