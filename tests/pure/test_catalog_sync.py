"""Catalog synchronisation rules."""

import dataclasses

import pytest

from microsoft_esd import catalog_sync as cs
from microsoft_esd.contract import CatalogItem
from microsoft_esd.errors import ProtocolError


def item(pid, price=10.0, status="active", title=None):
    return CatalogItem(
        pid,
        f"SKU-{pid}",
        title or f"Product {pid}",
        "",
        "Microsoft",
        "Windows",
        "en-US",
        price,
        "USD",
        status,
    )


def known_for(*items, status="active", start=1):
    return {
        i.product_id: cs.Known(start + n, cs.fingerprint(i), status) for n, i in enumerate(items)
    }


def test_first_sync_creates_active_items_and_skips_discontinued_ones():
    plan = cs.plan({}, [item("A"), item("B"), item("C", status="discontinued")])
    assert [i.product_id for i in plan.create] == ["A", "B"]
    assert plan.skipped == 1 and plan.changes == 2


def test_unchanged_resync_plans_nothing():
    items = [item("A"), item("B")]
    plan = cs.plan(known_for(*items), items)
    assert plan.changes == 0 and plan.unchanged == 2


def test_reprice_marks_updated_but_a_product_still_new_stays_new():
    a, b = item("A"), item("B")
    known = known_for(a, b)
    known["B"] = dataclasses.replace(known["B"], status="new")
    plan = cs.plan(known, [item("A", price=12.0), item("B", title="Renamed")])
    assert [(rid, i.product_id, st) for rid, i, st in plan.update] == [
        (1, "A", "updated"),
        (2, "B", "new"),
    ]


def test_discontinued_in_cis_or_missing_from_it():
    a, b, c = item("A"), item("B"), item("C")
    plan = cs.plan(known_for(a, b, c), [a, item("B", status="discontinued")])
    assert sorted(rid for rid, _ in plan.discontinue) == [2, 3]
    again = cs.plan(known_for(a, b, c, status="discontinued"), [item("B", status="discontinued")])
    assert again.changes == 0  # already discontinued: nothing to write


def test_listed_again_after_discontinuation_needs_review():
    a = item("A")
    plan = cs.plan(known_for(a, status="discontinued"), [a])
    assert [(i.product_id, st) for _, i, st in plan.update] == [("A", "updated")]


def test_duplicate_product_in_the_feed_is_refused():
    with pytest.raises(ProtocolError, match="twice"):
        cs.plan({}, [item("A"), item("A")])


def test_language_codes():
    assert cs.odoo_language_to_cis("de_DE") == "de-DE"
    assert cs.odoo_language_to_cis("sr@latin") == "sr"
    assert cs.odoo_language_to_cis(False) == "en-US"
