"""The simulator's answers follow docs/cis-openapi.yaml."""

import pathlib

import jsonschema
import pytest
import yaml
from conftest import PRODUCT

from microsoft_esd import contract

SPEC = yaml.safe_load(
    (pathlib.Path(__file__).resolve().parents[2] / "docs" / "cis-openapi.yaml").read_text()
)

# OpenAPI 3.1 schemas are JSON Schema 2020-12 (jsonschema 4); the keywords the contract uses
# (type, properties, required, enum, items) mean the same in draft 7, all that jsonschema 3.2
# (Ubuntu 22.04) knows.
VALIDATOR = getattr(jsonschema, "Draft202012Validator", jsonschema.Draft7Validator)


def _inline(node):
    """The schema with every local $ref replaced by its target."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SPEC
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return _inline(target)
        return {k: _inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v) for v in node]
    return node


def schema_for(path, method, status):
    response = _inline(SPEC["paths"][path][method]["responses"][str(status)])
    return response["content"]["application/json"]["schema"]


def validate(path, method, status, payload):
    VALIDATOR(schema_for(path, method, status)).validate(payload)


def raw(client, method, path, **kwargs):
    """Call the simulator with the client's session; return status and decoded body."""
    response = client.session.request(
        method,
        client.config.service_url + path,
        headers={
            "Authorization": f"Bearer {client.tokens.get()}",
            contract.HEADER_REQUEST_ID: kwargs.pop("request_id", "spec-check"),
            contract.HEADER_CORRELATION_ID: "spec",
        },
        verify=client.config.verify,
        timeout=10,
        **kwargs,
    )
    return response.status_code, response.json()


@pytest.fixture
def ch(client):
    return client.config.channel_id


def test_catalog_and_error_answers(client, ch):
    status, body = raw(
        client, "GET", contract.catalog_path(ch), params={"country": "FR", "language": "fr-FR"}
    )
    validate("/v1/channels/{channelId}/catalog", "get", status, body)
    status, body = raw(
        client, "GET", contract.catalog_path(ch), params={"country": "XX", "language": "fr-FR"}
    )
    assert status == 422
    validate("/v1/channels/{channelId}/catalog", "get", status, body)


def test_account_order_license_return_answers(client, ch, customer):
    body = contract.account_body("spec-1", "reseller", "Spec", "s@s.example", "US", "en-US")
    status, account = raw(client, "POST", contract.accounts_path(ch), json=body, request_id="a1")
    validate("/v1/channels/{channelId}/accounts", "post", status, account)

    order_body = contract.order_body(PRODUCT, customer.account_id)
    status, order = raw(
        client, "POST", contract.orders_path(ch), json=order_body, request_id="o-spec"
    )
    assert status == 201, order
    validate("/v1/channels/{channelId}/orders", "post", status, order)
    license_id = order["licenses"][0]["licenseId"]

    status, lic = raw(client, "GET", contract.license_path(ch, license_id))
    validate("/v1/channels/{channelId}/licenses/{licenseId}", "get", status, lic)

    status, page = raw(
        client, "GET", contract.licenses_path(ch), params={"modifiedSince": "2000-01-01T00:00:00Z"}
    )
    validate("/v1/channels/{channelId}/licenses", "get", status, page)

    status, result = raw(
        client, "POST", contract.return_path(ch, license_id), json={}, request_id="r-spec"
    )
    validate("/v1/channels/{channelId}/licenses/{licenseId}/return", "post", status, result)
    status, refused = raw(
        client, "POST", contract.return_path(ch, license_id), json={}, request_id="r-spec2"
    )
    assert status == 409
    validate("/v1/channels/{channelId}/licenses/{licenseId}/return", "post", status, refused)


def test_import_answers_every_license_and_the_accounts(client, ch, customer, reseller):
    """What an import reads: every license of the channel (no modifiedSince), each with its
    order and accounts, and the accounts with who they are."""
    client.order_license(PRODUCT, customer.account_id, reseller.account_id)
    status, page = raw(client, "GET", contract.licenses_path(ch))
    assert status == 200
    validate("/v1/channels/{channelId}/licenses", "get", status, page)
    sold = [lic for lic in page["items"] if lic["resellerAccountId"] == reseller.account_id]
    assert sold and sold[0]["customerAccountId"] == customer.account_id
    assert sold[0]["orderId"] and sold[0]["orderDate"]

    path = "/v1/channels/{channelId}/accounts/{accountId}"
    status, account = raw(client, "GET", contract.account_path(ch, reseller.account_id))
    validate(path, "get", status, account)
    assert account["role"] == "Reseller" and account["companyName"]
    status, missing = raw(client, "GET", contract.account_path(ch, "no-such-account"))
    assert status == 404
    validate(path, "get", status, missing)


def test_the_spec_rejects_what_breaks_the_contract():
    with pytest.raises(jsonschema.ValidationError):
        validate("/v1/channels/{channelId}/orders", "post", 201, {"orderId": "O", "licenses": []})
