"""The client against the simulator over real HTTPS, certificate auth included."""

import dataclasses
import socket

import pytest
from conftest import DISCONTINUED, PRODUCT

from microsoft_esd import contract
from microsoft_esd.errors import (
    AuthenticationError,
    ConflictError,
    ProtocolError,
    UnavailableError,
    ValidationError,
)
from microsoft_esd.simulator import pki


def test_check_authenticates_and_reads_one_page(client):
    report = client.check()
    assert report["authenticated"] and report["catalogItems"] == 100 and report["morePages"]


def test_one_token_serves_every_call(client, customer):
    for _ in range(5):
        client.catalog_page()
    client.order_license(PRODUCT, customer.account_id)
    assert client.token_acquisitions == 1


def test_catalog_pages_are_all_read_in_the_instance_language(client):
    items = list(client.iter_catalog())
    assert len(items) == 16 + 250
    office = next(i for i in items if i.product_id == PRODUCT)
    assert office.title == "Office Home 2024 - English - ESD" and office.currency == "USD"
    assert {i.status for i in items} == {"active", "discontinued"}
    german = list(client.iter_catalog("DE", "de-DE"))
    assert next(i for i in german if i.sku == "EP2-06606-DE").title.endswith("Deutsch - ESD")
    assert {i.currency for i in german} == {"EUR"}


def test_order_status_redeem_and_refused_return(client, admin, customer, reseller):
    order = client.order_license(PRODUCT, customer.account_id, reseller.account_id, "SO042")
    (lic,) = order.licenses
    assert lic.token_status == "activated" and lic.return_status == "none"
    assert lic.token and lic.activation_link.startswith("https://127.0.0.1")
    admin.redeem(lic.license_id)
    status = client.get_license(lic.license_id)
    assert status.token_status == "redeemed" and status.activation_date is not None
    with pytest.raises(ConflictError) as info:
        client.return_license(lic.license_id)
    assert info.value.code == contract.CODE_LICENSE_REDEEMED
    assert lic.token not in str(info.value)


def test_return_of_an_unredeemed_license(client, customer):
    (lic,) = client.order_license(PRODUCT, customer.account_id).licenses
    returned = client.return_license(lic.license_id, request_id="ret-" + lic.license_id)
    assert (returned.token_status, returned.return_status) == ("return_accepted", "successful")
    # The same return request again is answered the same, not refused.
    again = client.return_license(lic.license_id, request_id="ret-" + lic.license_id)
    assert again.token_status == "return_accepted"
    assert client.get_license(lic.license_id).token_status == "return_accepted"


def test_bulk_changes_since_a_date(client, admin, customer):
    (lic,) = client.order_license(PRODUCT, customer.account_id).licenses
    since = client.get_license(lic.license_id).last_modified
    admin.redeem(lic.license_id)
    changed = {c.license_id: c for c in client.iter_license_changes(since)}
    assert changed[lic.license_id].token_status == "redeemed"


def test_discontinued_product_and_unknown_customer_are_refused(client, customer):
    with pytest.raises(ValidationError, match="discontinued"):
        client.order_license(DISCONTINUED, customer.account_id)
    with pytest.raises(ValidationError, match="customerAccountId"):
        client.order_license(PRODUCT, "no-such-account")


def test_account_with_a_parent_is_refused(client):
    body = contract.account_body("x", "user", "X", "x@x.example", "US", "en-US", "parent")
    with pytest.raises(ValidationError, match="parent"):
        client._request("POST", contract.accounts_path(client.config.channel_id), "x", body=body)


def test_429_burst_then_success(make_client, admin, customer):
    client = make_client()
    admin.faults(rate_limit=2, retry_after=1, paths="orders")
    order = client.order_license(PRODUCT, customer.account_id)
    assert order.licenses[0].token
    assert client.stats["retries"] == 2


def test_timeout_after_the_order_was_committed_yields_the_same_token(make_client, admin, customer):
    client = make_client(read_timeout=0.5)
    before = admin.stats()["licenses"]
    admin.faults(timeout=1, timeout_seconds=1.5, paths="orders")
    order = client.order_license(PRODUCT, customer.account_id, request_id="rid-timeout")
    assert admin.stats()["licenses"] == before + 1  # committed once, not twice
    again = client.order_license(PRODUCT, customer.account_id, request_id="rid-timeout")
    assert again.licenses[0].token == order.licenses[0].token
    assert client.stats["retries"] == 1


def test_dropped_connection_after_commit_yields_the_same_token(make_client, admin, customer):
    client = make_client()
    before = admin.stats()["licenses"]
    admin.faults(drop_after_commit=1, paths="orders")
    order = client.order_license(PRODUCT, customer.account_id, request_id="rid-drop")
    issued = [i for i in admin.licenses() if i["licenseId"] == order.licenses[0].license_id]
    assert admin.stats()["licenses"] == before + 1
    assert issued[0]["token"] == order.licenses[0].token


def test_same_request_id_for_another_order_is_refused(client, customer):
    client.order_license(PRODUCT, customer.account_id, request_id="rid-reuse")
    with pytest.raises(ConflictError) as info:
        client.order_license("EP2-06615:en-US", customer.account_id, request_id="rid-reuse")
    assert info.value.code == contract.CODE_REQUEST_ID_REUSED


def test_malformed_json(make_client, admin, customer):
    client = make_client()
    admin.faults(malformed=1, paths="orders")
    assert client.order_license(PRODUCT, customer.account_id).licenses  # retried, clean answer
    admin.faults(malformed=10, paths="catalog")
    with pytest.raises(ProtocolError, match="not JSON"):
        client.catalog_page()


def test_wrong_certificate_is_refused(sim_config, tmp_path, make_client):
    cert, key = pki.make_self_signed_client("not registered")
    pfx = tmp_path / "other.pfx"
    pfx.write_bytes(pki.pfx_bytes(cert, key, "pw"))
    config = dataclasses.replace(sim_config, certificate_path=str(pfx), certificate_password="pw")
    client = make_client(config)
    with pytest.raises(AuthenticationError, match="not registered") as info:
        client.check()
    assert "pw" not in str(info.value).split("registered")[0]


def test_wrong_certificate_password_is_a_certificate_error(sim_config, make_client):
    config = dataclasses.replace(sim_config, certificate_password="nope")
    with pytest.raises(Exception, match="password is wrong"):
        make_client(config)


def test_unreachable_service_and_untrusted_tls(sim_config, make_client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = dataclasses.replace(
        sim_config,
        service_url=f"https://127.0.0.1:{port}",
        authority=f"https://127.0.0.1:{port}/{sim_config.tenant}",
    )
    with pytest.raises(UnavailableError, match="cannot reach the Azure AD authority"):
        make_client(down, deadline=2).check()
    untrusted = dataclasses.replace(sim_config, ca_bundle="")
    with pytest.raises(UnavailableError, match="Azure AD authority"):
        make_client(untrusted, deadline=2).check()


def test_state_survives_a_restart(tmp_path):
    from microsoft_esd.simulator.state import State  # noqa: PLC0415

    state = State(tmp_path)
    account = state.create_account(
        {
            "externalId": "e",
            "role": "User",
            "companyName": "C",
            "email": "c@c.example",
            "country": "US",
        }
    )
    body = contract.order_body(PRODUCT, account["accountId"])
    first = state.create_order("rid-restart", body)
    reopened = State(tmp_path)  # replays the journal
    assert reopened.create_order("rid-restart", body) == first
    assert reopened.data["client_id"] == state.data["client_id"]
    assert len(reopened.data["licenses"]) == 1


def test_every_license_of_the_channel_with_its_accounts(client, customer, reseller):
    """An import reads every license (no date), each with its order, date and accounts."""
    direct = client.order_license(PRODUCT, customer.account_id).licenses[0]
    resold = client.order_license(PRODUCT, customer.account_id, reseller.account_id).licenses[0]
    listed = {lic.license_id: lic for lic in client.iter_licenses()}
    assert listed[direct.license_id].reseller_account_id is None
    assert listed[direct.license_id].customer_account_id == customer.account_id
    assert listed[resold.license_id].reseller_account_id == reseller.account_id
    assert listed[resold.license_id].order_id and listed[resold.license_id].order_date
    same_key = listed[resold.license_id].token == resold.token
    assert same_key, "the listing carries the key (compared, never printed)"
    account = client.get_account(reseller.account_id)
    assert (account.role, account.company_name) == ("reseller", "Fabrikam Reseller")
    assert account.email == "sales@fabrikam.example" and account.country == "US"
