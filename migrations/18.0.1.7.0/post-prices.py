"""18.0.1.7.0: prices that follow Microsoft's.

- Products: Microsoft's price (``esd_cis_price``) becomes the cost of those that have none yet,
  converted to the company's currency at the upgrade day's rate (left as it was where no rate
  exists: the next catalog sync converts it). A Sales Price set before this version was typed
  by hand: it is marked *Fixed Sales Price*, so no rule changes it.
- Licenses: their cost at the sale was never recorded. A license sold in Odoo gets its
  product's cost (Microsoft's price at the upgrade), converted to its currency at its purchase
  date: an estimate, since earlier price changes were never recorded. Imported licenses (no
  sale, no price) keep no cost.
"""

import logging
from collections import defaultdict

from odoo import SUPERUSER_ID, api, fields

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {"active_test": False, "esd_rule_price": True})
    _product_costs(env)
    _fixed_prices(env)
    _license_costs(env)


def _product_costs(env):
    today = fields.Date.context_today(env["esd.instance"])
    for instance in env["esd.instance"].search([]):
        Product = env["product.template"].with_company(instance.company_id)
        products = Product.search(
            [("esd_instance_id", "=", instance.id), ("esd_cis_currency", "!=", False)]
        ).filtered(lambda p: not p.standard_price and p.esd_cis_price)
        factors, warnings = instance._esd_cost_factors(
            set(products.mapped("esd_cis_currency")), today
        )
        for warning in warnings:
            _logger.warning("ESD instance %s: %s", instance.id, warning)
        done = 0
        for product in products:
            factor = factors.get(product.esd_cis_currency)
            if factor is not None:
                product.standard_price = product.esd_cis_price * factor
                done += 1
        _logger.info(
            "ESD instance %s: %s products got Microsoft's price as cost", instance.id, done
        )


def _fixed_prices(env):
    env.cr.execute(
        "UPDATE product_template SET esd_price_fixed = true "
        "WHERE is_esd AND list_price > 0 AND esd_price_fixed IS NOT TRUE"
    )
    _logger.info("%s ESD products keep the Sales Price typed by hand", env.cr.rowcount)


def _license_costs(env):
    assets = env["esd.asset"].search(
        [("imported", "=", False), ("cost_unit", "=", 0), ("sale_order_id", "!=", False)]
    )
    groups = defaultdict(lambda: env["esd.asset"])
    for asset in assets:
        key = (asset.product_id, asset.company_id, asset.currency_id, asset.purchase_date)
        groups[key] |= asset
    for (product, company, currency, date), group in groups.items():
        cost = product.with_company(company).standard_price
        if not cost:
            continue
        group.write(
            {
                "cost_unit": company.currency_id._convert(
                    cost, currency, company, date or fields.Date.today()
                )
            }
        )
    _logger.info("%s ESD licenses got their product's cost", len(assets))
