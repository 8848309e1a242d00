"""The sales price rule, margins and who hears of a price change."""

import dataclasses

import pytest

from microsoft_esd import catalog_sync as cs
from microsoft_esd import prices
from microsoft_esd.contract import CatalogItem


def item(pid, price=10.0, currency="USD", title=None):
    return CatalogItem(
        pid, f"SKU-{pid}", title or f"Product {pid}", "", "Microsoft", "Windows", "en-US", price,
        currency, "active",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("cost", "markup", "rounding", "expected"),
    [
        (149.99, 25, "0.99", 186.99),  # 187.4875 -> 187 -> 186.99
        (159.99, 25, "0.99", 199.99),  # 199.9875 -> 200 -> 199.99
        (149.99, 25, "none", 187.4875),
        (149.99, 8, "0.99", 161.99),  # 161.9892 -> 162 -> 161.99
        (149.99, 12, "1.00", 168.0),
        (149.99, 12, "9.99", 169.99),  # 167.99 -> 170 -> 169.99
        (100.0, 0, "0.95", 99.95),
        (100.0, 24.5, "0.90", 124.9),  # the tie 124.5 rounds up to 125, as Odoo's does
    ],
)
def test_rule_price_is_odoos_formula(cost, markup, rounding, expected):
    assert prices.rule_price(cost, markup, rounding) == pytest.approx(expected, abs=1e-9)


def test_a_tie_rounds_up_even_when_the_float_is_a_hair_below_it():
    # 2.675 is 2.67499999... as a float: Odoo's epsilon tips it up, and so does ours.
    assert prices.float_round(267.5, 1.0) == 268.0
    assert prices.float_round(2.675 * 100, 1.0) == 268.0
    assert prices.float_round(-2.5, 1.0) == -3.0
    assert prices.float_round(0.0, 1.0) == 0.0


def test_no_cost_no_price_and_a_rule_never_sells_below_cost():
    assert prices.rule_price(0.0, 25, "0.99") is None
    assert prices.rule_price(None, 25) is None
    assert prices.rule_price(3.0, 25, "9.99") is None, "rounded to nothing: no price"
    with pytest.raises(ValueError, match="0 % or more"):
        prices.rule_price(100.0, -5)
    with pytest.raises(ValueError, match="0 % or more"):
        prices.check_markup(float("nan"))
    with pytest.raises(ValueError, match="unknown rounding"):
        prices.rounding_terms("0.42")
    assert prices.rounding_terms(None) == (0.0, 0.0)


def test_margin_amount_and_percent():
    assert prices.margin(200.0, 150.0) == (50.0, 25.0)
    assert prices.margin(100.0, 150.0) == (-50.0, -50.0)
    assert prices.margin(0.0, 0.0) == (0.0, 0.0)
    assert prices.margin(None, 10.0) == (-10.0, 0.0)


def test_below_cost_compares_what_the_currency_shows():
    assert prices.below_cost(149.98, 149.99)
    assert not prices.below_cost(149.99, 149.99)
    assert not prices.below_cost(149.989, 149.99), "149.989 shows as 149.99"
    assert not prices.below_cost(0.0, 0.0), "no cost: nothing to be below"
    assert prices.below_cost(0.0, 10.0)


def test_price_changed_to_the_catalogs_precision():
    assert prices.price_changed(149.99, "USD", 159.99, "USD")
    assert prices.price_changed(149.99, "USD", 149.99, "EUR")
    assert not prices.price_changed(149.99, "USD", 149.99000001, "USD")
    assert not prices.price_changed(None, None, 149.99, "USD"), "never priced: not a change"


def test_digest_goes_to_the_buyers_of_changed_products_only():
    purchases = [("fabrikam", "office"), ("fabrikam", "office"), ("fabrikam", "visio")]
    purchases += [("proseware", "windows"), ("adatum", "visio"), ("adatum", "office")]
    assert prices.digest_recipients(purchases, {"office", "project"}) == {
        "fabrikam": ["office"],
        "adatum": ["office"],
    }
    assert prices.digest_recipients(purchases, set()) == {}


def test_the_plan_reports_microsofts_price_changes_among_the_updates():
    a, b, c = item("A", 149.99), item("B", 10.0), item("C", 5.0)
    known = {
        i.product_id: cs.Known(n + 1, cs.fingerprint(i), "active", i.price, i.currency)
        for n, i in enumerate((a, b, c))
    }
    known["C"] = dataclasses.replace(known["C"], price=None, currency=None)  # never priced
    plan = cs.plan(known, [item("A", 159.99), item("B", title="Renamed"), item("C", 6.0)])
    assert [rid for rid, _item, _status in plan.update] == [1, 2, 3]
    assert [
        (c.record_id, c.old_price, c.old_currency, c.item.price) for c in plan.price_changes
    ] == [(1, 149.99, "USD", 159.99)]
    # A currency change is a price change too.
    again = cs.plan(known, [item("A", 149.99, "EUR"), b, c])
    assert [c.record_id for c in again.price_changes] == [1]
