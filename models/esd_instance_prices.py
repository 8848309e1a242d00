import logging

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import format_amount

from ..microsoft_esd import prices
from . import esd_jobs
from .esd_access import ESD_MANAGER, check_caller, check_companies

_logger = logging.getLogger(__name__)

ROUNDING_SELECTION = [
    ("none", "No rounding"),
    ("0.99", "Ends in .99"),
    ("0.95", "Ends in .95"),
    ("0.90", "Ends in .90"),
    ("1.00", "Whole amount"),
    ("9.99", "Ends in 9.99"),
]
PRICE_RULE_FIELDS = ("esd_price_from_cost", "esd_price_markup", "esd_price_rounding")


class EsdInstance(models.Model):
    """Prices that follow Microsoft's: the catalog price is the products' cost, the instance's
    sales price rule (Odoo's pricelist formula on cost) their Sales Price, and each change of
    Microsoft's price is recorded, posted and announced to the resellers who bought it."""

    _inherit = "esd.instance"

    esd_price_from_cost = fields.Boolean(
        "Sales Prices from Cost",
        tracking=True,
        help="New and changed products get their Sales Price from Microsoft's price (their "
        "cost) by the rule below; a product whose Sales Price was typed by hand keeps it.",
    )
    esd_price_markup = fields.Float(
        "Markup on Cost (%)",
        default=25.0,
        digits=(16, 2),
        tracking=True,
        help="The Sales Price is the cost plus this percentage, then rounded: Odoo's pricelist "
        "formula on cost (a markup is a negative discount).",
    )
    esd_price_rounding = fields.Selection(
        ROUNDING_SELECTION,
        "Rounding",
        default="0.99",
        required=True,
        tracking=True,
        help="As Odoo's pricelist rules round: 'Ends in .99' rounds to the nearest whole amount "
        "and takes 0.01 off.",
    )
    esd_price_example = fields.Char("Example", compute="_compute_esd_price_example")
    esd_price_change_ids = fields.One2many(
        "esd.price.change", "instance_id", string="Price Changes", readonly=True
    )

    @api.depends(*PRICE_RULE_FIELDS, "company_id")
    def _compute_esd_price_example(self):
        for instance in self:
            currency = instance.company_id.currency_id or self.env.company.currency_id
            if not instance.esd_price_from_cost or instance.esd_price_markup < 0:
                instance.esd_price_example = False
                continue
            price = prices.rule_price(100.0, instance.esd_price_markup, instance.esd_price_rounding)
            instance.esd_price_example = self.env._(
                "A product that costs %(cost)s sells at %(price)s.",
                cost=format_amount(self.env, 100.0, currency),
                price=format_amount(self.env, price, currency),
            )

    @api.constrains("esd_price_markup")
    def _check_esd_price_markup(self):
        for instance in self:
            if instance.esd_price_markup < 0:
                raise ValidationError(
                    self.env._(
                        "%s: the markup on cost must be 0 %% or more (a rule never sells below "
                        "cost).",
                        instance.name,
                    )
                )

    def write(self, vals):
        result = super().write(vals)
        if any(name in vals for name in PRICE_RULE_FIELDS):
            for instance in self.filtered("esd_price_from_cost"):
                instance._esd_reprice_products()
        return result

    def action_esd_edit_price_digest_template(self):
        """The price-change email of this instance's company, for its ESD managers."""
        self.ensure_one()
        check_caller(self, ESD_MANAGER, "read")
        return self._esd_edit_price_digest_template(self.company_id)

    @api.model
    def _esd_edit_price_digest_template(self, company):
        """The price-change email template of ``company`` (made from the shared one the first
        time), for an ESD manager working in it."""
        check_caller(self, ESD_MANAGER, "read")
        check_companies(self.env, company, self.env._("The price-change email"))
        return self.env["mail.template"]._esd_action_edit_company_copy(
            "microsoft_esd.mail_template_esd_price_digest", company
        )

    # ------------------------------------------------------------------ the rule
    def _esd_rule_price(self, cost):
        """The Sales Price this instance's rule gives ``cost`` (company currency), or None when
        it has no rule or the product no cost."""
        self.ensure_one()
        if not self.esd_price_from_cost:
            return None
        try:
            price = prices.rule_price(cost, self.esd_price_markup, self.esd_price_rounding)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return price and self.company_id.currency_id.round(price)

    def _esd_reprice_products(self, products=None):
        """The rule's Sales Price for the instance's products (or ``products``) that have a cost
        and no price typed by hand; returns those whose price changed."""
        self.ensure_one()
        Product = self.env["product.template"].sudo().with_company(self.company_id)
        if products is None:
            products = Product.with_context(active_test=False).search(
                [("esd_instance_id", "=", self.id), ("esd_price_fixed", "=", False)]
            )
        changed = Product.browse()
        for product in products.with_company(self.company_id):
            if product.esd_price_fixed:
                continue
            price = self._esd_rule_price(product.standard_price)
            if (
                price is None
                or self.company_id.currency_id.compare_amounts(price, product.list_price) == 0
            ):
                continue
            product.with_context(esd_rule_price=True).list_price = price
            changed |= product
        return changed

    # ------------------------------------------------------------------ catalog sync
    def _esd_cost_factors(self, currencies, date):
        """{catalog currency code: factor to the company's currency, or None without a rate}
        and the warnings to show for those without one."""
        self.ensure_one()
        company = self.company_id
        target = company.currency_id
        Currency = self.env["res.currency"].with_context(active_test=False)
        factors, warnings = {}, []
        for code in sorted(filter(None, currencies)):
            currency = Currency.search([("name", "=", code)], limit=1)
            if currency == target:
                factors[code] = 1.0
                continue
            has_rate = currency and self.env["res.currency.rate"].sudo().search_count(
                [
                    ("currency_id", "=", currency.id),
                    ("name", "<=", date),
                    ("company_id", "in", [False, company.root_id.id]),
                ],
                limit=1,
            )
            if not has_rate:
                factors[code] = None
                warnings.append(
                    self.env._(
                        "No exchange rate from %(currency)s to %(target)s on or before "
                        "%(date)s: the cost of its products was left as it was (and Microsoft's "
                        "new price is applied at the next sync once a rate exists). Add the rate "
                        "in Accounting > Configuration > Currencies.",
                        currency=code,
                        target=target.name,
                        date=fields.Date.to_string(date),
                    )
                )
                continue
            factors[code] = currency._get_conversion_rate(currency, target, company, date)
        return factors, warnings

    def _esd_tiers(self):
        """The pricelists of this instance's resellers: the tiers whose prices a price change
        lists, each reseller's own in its digest."""
        self.ensure_one()
        resellers = (
            self.env["res.partner"]
            .sudo()
            .search(
                [
                    ("esd_role", "=", "reseller"),
                    ("company_id", "in", [False, self.company_id.id]),
                ]
            )
        )
        if not resellers:
            return self.env["product.pricelist"]
        Pricelist = self.env["product.pricelist"].sudo().with_company(self.company_id)
        by_partner = Pricelist._get_partner_pricelist_multi(resellers.ids)
        return Pricelist.union(*by_partner.values()).sorted(lambda p: (p.sequence, p.id))

    def _esd_price_snapshot(self, products, tiers):
        """{product id: (cost, Sales Price, {pricelist id: price})} as things stand."""
        products = products.with_company(self.company_id)
        tier_prices = {
            tier.id: tier.with_company(self.company_id)._get_products_price(products, 1.0)
            for tier in tiers
        }
        return {
            product.id: (
                product.standard_price,
                product.list_price,
                {tier_id: found[product.id] for tier_id, found in tier_prices.items()},
            )
            for product in products
        }

    def _esd_apply_catalog(self, plan, correlation_id):
        """Apply a catalog plan with its prices: Microsoft's price converted to the company's
        currency is the cost, the rule gives the Sales Price, each price change is recorded,
        posted on its product and queued for the resellers' digests. Returns (the products by
        kind, the pricing summary for the sync's result)."""
        self.ensure_one()
        now = fields.Datetime.now()
        Product = (
            self.env["product.template"]
            .with_company(self.company_id)
            .with_context(active_test=False)
        )
        currencies = {item.currency for item in plan.create}
        currencies |= {item.currency for _record_id, item, _status in plan.update}
        factors, warnings = self._esd_cost_factors(currencies, fields.Date.context_today(self))
        changed = Product.browse([change.record_id for change in plan.price_changes])
        tiers = self._esd_tiers() if changed else self.env["product.pricelist"]
        before = self._esd_price_snapshot(changed, tiers)
        products = Product._esd_apply_catalog_plan(self, plan, factors)
        after = self._esd_price_snapshot(changed.exists(), tiers)
        changes = self._esd_record_price_changes(
            plan, factors, before, after, tiers, correlation_id, now
        )
        touched = products["new"] | products["updated"]
        below_cost = touched.filtered("esd_below_cost")
        return products, {
            "price_changes": changes,
            "below_cost": below_cost,
            "warnings": warnings,
        }

    def _esd_record_price_changes(self, plan, factors, before, after, tiers, correlation_id, now):
        """One esd.price.change per product whose Microsoft price moved (with its old and new
        price on each tier), a note in its chatter, and the digest job woken. A price in a
        currency without a rate waits for the sync that can convert it."""
        vals_list = []
        for change in plan.price_changes:
            if change.record_id not in after or factors.get(change.item.currency) is None:
                continue
            cost_old, list_old, tiers_old = before[change.record_id]
            cost_new, list_new, tiers_new = after[change.record_id]
            vals_list.append(
                {
                    "product_tmpl_id": change.record_id,
                    "instance_id": self.id,
                    "date": now,
                    "correlation_id": correlation_id,
                    "cis_price_old": change.old_price,
                    "cis_currency_old": change.old_currency,
                    "cis_price_new": change.item.price,
                    "cis_currency": change.item.currency,
                    "cost_old": cost_old,
                    "cost_new": cost_new,
                    "list_price_old": list_old,
                    "list_price_new": list_new,
                    # The Sales Price (buyers without a pricelist), then each tier.
                    "line_ids": [
                        fields.Command.create({"price_old": list_old, "price_new": list_new})
                    ]
                    + [
                        fields.Command.create(
                            {
                                "pricelist_id": tier.id,
                                "price_old": tiers_old[tier.id],
                                "price_new": tiers_new[tier.id],
                            }
                        )
                        for tier in tiers
                    ],
                }
            )
        changes = self.env["esd.price.change"].sudo().create(vals_list)
        if changes:
            changes.product_tmpl_id._message_log_batch(
                {change.product_tmpl_id.id: change._esd_note() for change in changes}
            )
            esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_price_changes")
        return changes

    def _esd_price_summary(self, pricing):
        """The sentences the sync's summary adds about prices (none when nothing to say)."""
        parts = []
        if pricing["price_changes"]:
            parts.append(
                self.env._(
                    "Price changes from Microsoft: %s (recorded on each product, announced to "
                    "the resellers who bought them).",
                    len(pricing["price_changes"]),
                )
            )
        if pricing["below_cost"]:
            parts.append(
                self.env._(
                    "Priced below their new cost: %s (a Sales Price typed by hand).",
                    len(pricing["below_cost"]),
                )
            )
        parts += pricing["warnings"]
        return " ".join(parts)
