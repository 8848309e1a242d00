"""Prices that follow Microsoft's, decided without a database.

The sales price rule of an instance is Odoo's pricelist formula on cost: cost + markup %, rounded
to a multiple of ``price_round``, plus ``price_surcharge`` (Odoo's way to end prices in .99:
round to 1.00 and add -0.01). :func:`rule_price` computes it exactly as Odoo's
``product.pricelist.item._compute_price`` does, so that a preview, a test or a document agrees
with the price Odoo gives. The rest: margins, and who hears of a price change.
"""

import math
from collections import defaultdict

# The roundings an ESD manager chooses from: name -> (price_round, price_surcharge), the two
# terms of Odoo's pricelist formula.
ROUNDINGS = {
    "none": (0.0, 0.0),
    "0.99": (1.0, -0.01),
    "0.95": (1.0, -0.05),
    "0.90": (1.0, -0.10),
    "1.00": (1.0, 0.0),
    "9.99": (10.0, -0.01),
}
# How far back a reseller's purchases make it hear of a product's price change.
DIGEST_MONTHS = 12


def rounding_terms(rounding):
    """(price_round, price_surcharge) of a rounding name; ValueError for an unknown one."""
    try:
        return ROUNDINGS[rounding or "none"]
    except KeyError:
        raise ValueError(f"unknown rounding {rounding!r}") from None


def check_markup(markup):
    """The markup of a sales price rule, in %: a rule never sells below cost."""
    if markup is None or not math.isfinite(markup) or markup < 0:
        raise ValueError("the markup on cost must be 0 % or more: a rule never sells below cost")
    return markup


def float_round(value, precision_rounding):
    """Odoo's ``float_round`` (HALF-UP, with its epsilon) to a step of 1 or more."""
    if not value:
        return 0.0
    normalized = value / precision_rounding
    epsilon = 2 ** (math.log2(abs(normalized)) - 50)
    return round(normalized + math.copysign(epsilon, normalized)) * precision_rounding


def rule_price(cost, markup, rounding="none"):
    """The sales price that a rule "cost + ``markup`` %, ``rounding``" gives ``cost``.

    Odoo's formula step by step: the markup is a negative discount, the rounding comes after
    it and the surcharge last. None for a product without a cost (nothing to price from), and
    when the rounding leaves no price (a cost of 3 rounded to 9.99 is -0.01).
    """
    if not cost or cost <= 0:
        return None
    price_round, surcharge = rounding_terms(rounding)
    discount = -check_markup(markup)
    price = (cost - (cost * (discount / 100))) or 0.0
    if price_round:
        price = float_round(price, price_round)
    price += surcharge
    return price if price > 0 else None


def margin(revenue, cost):
    """(amount, percent of the revenue) that a sale at ``revenue`` costing ``cost`` makes; the
    percent is 0 without revenue."""
    amount = (revenue or 0.0) - (cost or 0.0)
    percent = 100.0 * amount / revenue if revenue else 0.0
    return amount, percent


def below_cost(price, cost, digits=2):
    """True when ``price`` is under ``cost`` once both are rounded to the currency."""
    if not cost or cost <= 0:
        return False
    return round(price or 0.0, digits) < round(cost, digits)


def price_changed(old_price, old_currency, new_price, new_currency):
    """Whether Microsoft's price moved (to 4 decimals, as the catalog's fingerprint reads it)."""
    if old_price is None:
        return False
    return old_currency != new_currency or round(old_price, 4) != round(new_price, 4)


def digest_recipients(purchases, changed):
    """Who hears of which price change: {buyer: sorted products it bought that changed}.

    ``purchases`` are (buyer, product) pairs (a reseller's licenses of the last months, in any
    number), ``changed`` the products whose price changed; a buyer of none of them is absent.
    """
    changed = set(changed)
    result = defaultdict(set)
    for buyer, product in purchases:
        if product in changed:
            result[buyer].add(product)
    return {buyer: sorted(products) for buyer, products in result.items()}
