"""The reseller API's rules without a database: problems, cursors, idempotency, bodies."""

import json
from pathlib import Path

import pytest

from microsoft_esd import api, webhooks

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "reseller-api.openapi.json"


def test_problem_details():
    problem = api.Problem("rate-limited", "Slow down.", headers={"Retry-After": "3"}, extra=1)
    assert problem.status == 429
    assert problem.body("/api/esd/v1/me") == {
        "type": "/api/esd/v1/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "Slow down.",
        "instance": "/api/esd/v1/me",
        "extra": 1,
    }
    with pytest.raises(ValueError):
        api.Problem("no-such-problem")


def test_cursor_round_trip_and_binding():
    filters = {"state": "delivered", "customer": None}
    cursor = api.encode_cursor(42, filters)
    assert api.decode_cursor(cursor, filters) == 42
    assert api.decode_cursor(None, filters) == 0
    for bad in ("garbage", "e30", api.encode_cursor(42, {"state": "failed"})):
        with pytest.raises(api.Problem) as raised:
            api.decode_cursor(bad, filters)
        assert raised.value.slug == "invalid-cursor"


def test_page_size():
    assert api.page_size(None) == api.DEFAULT_PAGE
    assert api.page_size("10") == 10
    for bad in ("0", "201", "x", "-1"):
        with pytest.raises(api.Problem):
            api.page_size(bad)


def test_fingerprint_ignores_spacing_and_key_order():
    one = api.fingerprint("POST", "/o", json.loads('{"a": 1, "b": [1, 2]}'))
    two = api.fingerprint("POST", "/o", json.loads('{"b":[1,2],"a":1}'))
    assert one == two != api.fingerprint("POST", "/o", {"a": 2, "b": [1, 2]})


def test_idempotency_key():
    assert api.check_idempotency_key(" abc ") == "abc"
    for bad in (None, "", "x" * 256, "a\nb"):
        with pytest.raises(api.Problem):
            api.check_idempotency_key(bad)


def test_rate_window():
    assert api.rate_window(125.5, 60) == (120, 55)
    assert api.rate_window(120, 60) == (120, 60)


def test_bodies():
    assert api.parse_json(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    for raw, content_type in (
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b"{}", "text/plain"),
    ):
        with pytest.raises(api.Problem):
            api.parse_json(raw, content_type)


def test_order_request():
    body = {"customer": 7, "reference": "PO-1", "lines": [{"sku": " A ", "quantity": 2}]}
    assert api.order_request(body) == (7, "PO-1", [("A", None, 2)])
    assert api.order_request({"lines": [{"product_id": 3, "quantity": 1}]})[0] == "self"
    with pytest.raises(api.Problem) as raised:
        api.order_request(
            {"customer": "x", "lines": [{"sku": "A", "product_id": 1, "quantity": 0}], "z": 1}
        )
    pointers = {error["pointer"] for error in raised.value.extensions["errors"]}
    assert pointers == {"/customer", "/lines/0", "/lines/0/quantity", "/z"}


def test_openapi_document_declares_every_problem_and_event():
    doc = json.loads(OPENAPI.read_text())
    assert doc["openapi"] == "3.1.0"
    slugs = doc["paths"]["/problems/{slug}"]["get"]["parameters"][0]["schema"]["enum"]
    assert slugs == sorted(api.PROBLEMS)
    assert set(doc["webhooks"]) == set(webhooks.EVENTS)
