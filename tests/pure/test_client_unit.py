"""The request helper of the CIS client, against canned HTTP answers (responses)."""

import json

import pytest
import requests
import responses

from microsoft_esd import contract
from microsoft_esd.client import CisClient, parse_retry_after
from microsoft_esd.config import InstanceConfig
from microsoft_esd.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    UnavailableError,
)

BASE = "https://cis.example.test"
CONFIG = InstanceConfig(
    service_url=BASE,
    resource_api="https://api.example.test",
    tenant="contoso",
    channel_id="CH1",
    client_id="app-1",
)
ORDERS = BASE + contract.orders_path("CH1")
LICENSE = {
    "licenseId": "L1",
    "token": "Q4HHJ-D32FY-FDRCR-C6GKW-V6M33",
    "activationLink": "https://activate.example.test/L1",
    "tokenStatus": "Activated",
    "returnStatus": "None",
}


class Tokens:
    """Access tokens for unit tests: counts how often the client asks and invalidates."""

    def __init__(self):
        self.acquisitions = 0
        self.invalidations = 0
        self.current = None

    def get(self):
        if self.current is None:
            self.acquisitions += 1
            self.current = f"access-{self.acquisitions}"
        return self.current

    def invalidate(self):
        self.invalidations += 1
        self.current = None


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    with CisClient(
        CONFIG, token_provider=Tokens(), sleep=sleeps.append, rng=lambda: 0.5, deadline=60
    ) as client:
        yield client


def answer_429_then_the_order():
    """CIS refuses the first order (429, Retry-After 3 s), then answers it."""
    responses.add(
        responses.POST,
        ORDERS,
        status=429,
        json={"code": "TooMany", "message": "slow"},
        headers={"Retry-After": "3"},
    )
    responses.add(responses.POST, ORDERS, status=201, json={"orderId": "O1", "licenses": [LICENSE]})


@responses.activate
def test_429_then_success_waits_for_retry_after_and_keeps_the_request_id(client, sleeps):
    answer_429_then_the_order()
    order = client.order_license("P1", "C1", request_id="req-42")
    assert order.licenses[0].license_id == "L1"
    assert sleeps == [pytest.approx(3 * 1.05)]
    sent = [call.request.headers[contract.HEADER_REQUEST_ID] for call in responses.calls]
    assert sent == ["req-42", "req-42"]
    correlations = {
        call.request.headers[contract.HEADER_CORRELATION_ID] for call in responses.calls
    }
    assert len(correlations) == 1
    assert json.loads(responses.calls[0].request.body) == contract.order_body("P1", "C1")


@responses.activate
def test_retry_after_beyond_the_deadline_fails_at_once(sleeps):
    responses.add(responses.POST, ORDERS, status=429, json={}, headers={"Retry-After": "120"})
    with CisClient(CONFIG, token_provider=Tokens(), sleep=sleeps.append, deadline=30) as client:
        with pytest.raises(RateLimitedError, match="wait 120s") as info:
            client.order_license("P1", "C1")
    assert info.value.transient and info.value.retry_after == 120
    assert sleeps == []


@responses.activate
def test_5xx_is_retried_with_backoff_then_reported(client, sleeps):
    for _ in range(5):
        responses.add(
            responses.POST, ORDERS, status=503, json={"code": "Busy", "message": "try later"}
        )
    with pytest.raises(UnavailableError, match=r"CIS failed on the order of product P1 \(503\)"):
        client.order_license("P1", "C1")
    assert len(responses.calls) == 5
    assert len(sleeps) == 4 and sleeps == sorted(sleeps)  # exponential growth


@responses.activate
def test_connection_error_is_transient_and_retried(client):
    responses.add(responses.POST, ORDERS, body=requests.ConnectionError("reset"))
    responses.add(responses.POST, ORDERS, status=201, json={"orderId": "O1", "licenses": [LICENSE]})
    assert client.order_license("P1", "C1", request_id="r").order_id == "O1"
    assert len(responses.calls) == 2


@responses.activate
def test_malformed_body_is_retried_then_a_protocol_error(client):
    for _ in range(5):
        responses.add(responses.POST, ORDERS, status=201, body="{not json")
    with pytest.raises(ProtocolError, match="not JSON"):
        client.order_license("P1", "C1")
    responses.reset()
    responses.add(
        responses.POST,
        ORDERS,
        status=201,
        json={"orderId": "O1", "licenses": [{"licenseId": "L1"}]},
    )
    with pytest.raises(ProtocolError, match="token status"):
        client.order_license("P1", "C1")
    assert len(responses.calls) == 1  # a body that breaks the contract is not retried


@responses.activate
def test_401_renews_the_token_once(client):
    url = BASE + contract.license_path("CH1", "L1")
    responses.add(
        responses.GET, url, status=401, json={"code": "InvalidToken", "message": "expired"}
    )
    responses.add(responses.GET, url, json=LICENSE)
    assert client.get_license("L1").token_status == "activated"
    assert client.tokens.invalidations == 1
    auth = [call.request.headers["Authorization"] for call in responses.calls]
    assert auth == ["Bearer access-1", "Bearer access-2"]


@responses.activate
def test_403_is_an_authentication_error_not_retried(client):
    url = BASE + contract.license_path("CH1", "L1")
    responses.add(
        responses.GET, url, status=403, json={"code": "ChannelNotAllowed", "message": "no"}
    )
    with pytest.raises(AuthenticationError, match="403"):
        client.get_license("L1")
    assert len(responses.calls) == 1


@responses.activate
def test_404_and_409_carry_the_cis_code_and_correlation_id(client):
    responses.add(
        responses.GET,
        BASE + contract.license_path("CH1", "nope"),
        status=404,
        json={"code": "LicenseNotFound", "message": "unknown", "correlationId": "c-9"},
    )
    with pytest.raises(NotFoundError) as info:
        client.get_license("nope")
    assert info.value.code == "LicenseNotFound" and info.value.correlation_id == "c-9"
    responses.add(
        responses.POST,
        BASE + contract.return_path("CH1", "L1"),
        status=409,
        json={"code": "LicenseRedeemed", "message": "key Q4HHJ-D32FY-FDRCR-C6GKW-V6M33 redeemed"},
    )
    with pytest.raises(ConflictError) as info:
        client.return_license("L1")
    assert info.value.code == contract.CODE_LICENSE_REDEEMED
    assert "Q4HHJ" not in str(info.value)


@responses.activate
def test_catalog_follows_continuation_tokens(client):
    url = BASE + contract.catalog_path("CH1")
    item = {
        "productId": "P",
        "sku": "S",
        "title": "T",
        "unitPrice": {"amount": 10, "currency": "USD"},
        "status": "Active",
    }
    responses.add(responses.GET, url, json={"items": [item], "continuationToken": "page2"})
    responses.add(responses.GET, url, json={"items": [item, item], "continuationToken": None})
    assert len(list(client.iter_catalog())) == 3
    assert "continuationToken=page2" in responses.calls[1].request.url
    assert "country=US" in responses.calls[0].request.url


@responses.activate
def test_a_looping_continuation_token_is_a_protocol_error(client):
    url = BASE + contract.catalog_path("CH1")
    responses.add(responses.GET, url, json={"items": [], "continuationToken": "same"})
    with pytest.raises(ProtocolError, match="same catalog continuation token"):
        list(client.iter_catalog())


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470) == 10
    assert parse_retry_after("soon") is None


@responses.activate
def test_every_license_is_listed_page_by_page_without_modified_since(client):
    url = BASE + contract.licenses_path("CH1")
    sold = {
        **LICENSE,
        "orderId": "ORD-1",
        "orderDate": "2024-05-01T10:00:00Z",
        "customerAccountId": "ACC-C",
        "resellerAccountId": None,
    }
    responses.add(responses.GET, url, json={"items": [sold], "continuationToken": "p2"})
    responses.add(responses.GET, url, json={"items": [dict(sold, licenseId="L2")]})
    listed = list(client.iter_licenses())
    assert [lic.license_id for lic in listed] == ["L1", "L2"]
    assert listed[0].order_id == "ORD-1"
    assert listed[0].customer_account_id == "ACC-C"
    assert listed[0].reseller_account_id is None
    assert listed[0].order_date.isoformat() == "2024-05-01T10:00:00"
    assert "modifiedSince" not in responses.calls[0].request.url
    assert "continuationToken=p2" in responses.calls[1].request.url
    # one business operation: one correlation id for every page
    ids = {call.request.headers[contract.HEADER_CORRELATION_ID] for call in responses.calls}
    assert len(ids) == 1
    assert "Q4HHJ" not in repr(listed[0]), "the key never shows in a license's repr"


@responses.activate
def test_a_looping_license_continuation_token_is_a_protocol_error(client):
    url = BASE + contract.licenses_path("CH1")
    responses.add(responses.GET, url, json={"items": [], "continuationToken": "same"})
    with pytest.raises(ProtocolError, match="same license continuation token"):
        list(client.iter_licenses())


@responses.activate
def test_get_account_reads_who_it_is_and_404_is_not_found(client):
    url = BASE + contract.account_path("CH1", "ACC-R")
    responses.add(
        responses.GET,
        url,
        json={
            "accountId": "ACC-R",
            "role": "Reseller",
            "status": "Active",
            "companyName": "Fabrikam",
            "email": "sales@fabrikam.example",
            "country": "US",
        },
    )
    account = client.get_account("ACC-R")
    assert (account.role, account.company_name, account.country) == ("reseller", "Fabrikam", "US")
    assert account.language is None
    missing = BASE + contract.account_path("CH1", "nope")
    responses.add(responses.GET, missing, status=404, json={"code": "AccountNotFound"})
    with pytest.raises(NotFoundError):
        client.get_account("nope")
