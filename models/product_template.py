from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..microsoft_esd import catalog_sync, prices
from .esd_access import ESD_MANAGER, check_caller, check_companies
from .notification import CLOSE, notification


class ProductTemplate(models.Model):
    _inherit = "product.template"

    is_esd = fields.Boolean(
        "Microsoft ESD",
        index=True,
        copy=False,
        help="Sold as a Microsoft ESD license (one token per unit).",
    )
    esd_instance_id = fields.Many2one(
        "esd.instance",
        "ESD Instance",
        index=True,
        copy=False,
        ondelete="restrict",
        check_company=True,
    )
    esd_product_id = fields.Char("CIS Product ID", index=True, copy=False, readonly=True)
    esd_sku = fields.Char("CIS SKU", copy=False, readonly=True)
    esd_catalog_status = fields.Selection(
        [
            ("new", "New"),
            ("active", "Active"),
            ("updated", "Updated"),
            ("discontinued", "Discontinued"),
        ],
        string="Catalog Status",
        copy=False,
        readonly=True,
        index=True,
    )
    esd_returnable = fields.Boolean(
        "Returnable",
        default=True,
        help="Licenses of this product can be returned to Microsoft while unredeemed.",
    )
    esd_last_sync = fields.Datetime("Last ESD Sync", copy=False, readonly=True)
    esd_cis_price = fields.Float(
        "CIS Unit Price", digits="Product Price", readonly=True, copy=False
    )
    esd_cis_currency = fields.Char("CIS Currency", readonly=True, copy=False)
    esd_platform = fields.Char("Platform", readonly=True, copy=False)
    esd_fingerprint = fields.Char(copy=False, readonly=True)
    esd_price_fixed = fields.Boolean(
        "Fixed Sales Price",
        copy=False,
        tracking=True,
        help="The Sales Price was typed by hand: the instance's sales price rule leaves it as it "
        "is when Microsoft's price changes. Untick it (or run Actions > Price from the rule) to "
        "hand the price back to the rule.",
    )
    esd_below_cost = fields.Boolean(
        "Below Cost",
        compute="_compute_esd_below_cost",
        search="_search_esd_below_cost",
        help="Its Sales Price is lower than its cost (Microsoft's price).",
    )

    _sql_constraints = [
        (
            "esd_product_unique",
            "UNIQUE(esd_instance_id, esd_product_id)",
            "A CIS product is synchronised once per instance.",
        ),
    ]

    # What Microsoft is asked for when this product is sold: ESD managers' (or the catalog
    # sync's) to set, never whoever may edit products (a cheap product ordering a dear SKU).
    ESD_GUARDED_FIELDS = (
        "is_esd",
        "esd_instance_id",
        "esd_product_id",
        "esd_sku",
        "esd_catalog_status",
        "esd_returnable",
        "esd_cis_price",
        "esd_cis_currency",
    )

    @api.depends_context("company")
    @api.depends("list_price", "standard_price", "is_esd")
    def _compute_esd_below_cost(self):
        for product in self:
            digits = product.currency_id.decimal_places
            product.esd_below_cost = bool(
                product.is_esd
                and product.list_price > 0
                and prices.below_cost(product.list_price, product.standard_price, digits)
            )

    def _search_esd_below_cost(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise UserError(self.env._("Search Below Cost with 'is set' or 'is not set'."))
        esd = self.with_context(active_test=False).search([("is_esd", "=", True)])
        below = esd.filtered("esd_below_cost")
        return [("id", "in" if (operator == "=") == value else "not in", below.ids)]

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            defaults = {"esd_returnable": True}
            if any(
                vals.get(name) and vals[name] != defaults.get(name)
                for name in self.ESD_GUARDED_FIELDS
            ):
                self._esd_check_guarded_write()
        return super().create(vals_list)

    def write(self, vals):
        guarded = [name for name in self.ESD_GUARDED_FIELDS if name in vals]
        if guarded and not self._esd_may_write_guarded():
            changed = [
                name
                for name in guarded
                for product in self
                if product[name]
                != self._fields[name].convert_to_record(
                    self._fields[name].convert_to_cache(vals[name], product), product
                )
            ]
            if changed:
                self._esd_check_guarded_write()
        result = super().write(vals)
        self._esd_after_price_write(vals)
        return result

    def _esd_after_price_write(self, vals):
        """A Sales Price typed by hand stays (the rule no longer changes it); a price handed
        back to the rule, or a cost typed by hand, is priced by the rule again."""
        if self.env.context.get("esd_rule_price"):
            return
        if "list_price" in vals and "esd_price_fixed" not in vals:
            self.filtered(lambda p: p.is_esd and not p.esd_price_fixed).esd_price_fixed = True
        if vals.get("esd_price_fixed") is False:
            self._esd_price_from_rule()
        elif "standard_price" in vals:
            self.filtered(lambda p: not p.esd_price_fixed)._esd_price_from_rule()

    def _esd_price_from_rule(self):
        """Give these ESD products their instance's rule price, when it has a rule."""
        for instance, products in self.filtered("is_esd").grouped("esd_instance_id").items():
            if instance and instance.sudo().esd_price_from_cost:
                instance.sudo()._esd_reprice_products(products.sudo())

    def _esd_may_write_guarded(self):
        return self.env.su or self.env.user.has_group(ESD_MANAGER)

    def _esd_check_guarded_write(self):
        if not self._esd_may_write_guarded():
            raise AccessError(
                self.env._(
                    "Only ESD managers change what a product orders from Microsoft (Microsoft "
                    "ESD, its instance, CIS product, SKU, catalog status, returnable)."
                )
            )

    @api.model
    def _esd_item_values(self, item, now):
        return {
            "name": item.title,
            "default_code": item.product_id,
            "esd_sku": item.sku,
            "description_sale": item.description or False,
            "esd_cis_price": item.price,
            "esd_cis_currency": item.currency,
            "esd_platform": item.platform,
            "esd_fingerprint": catalog_sync.fingerprint(item),
            "esd_last_sync": now,
        }

    @api.model
    def _esd_apply_catalog_plan(self, instance, plan, factors):
        """Write a catalog plan: one batched create, per-product updates, one discontinue write.

        ``factors`` converts each catalog currency to the company's (None: no rate). Microsoft's
        price is the cost; the instance's rule gives the Sales Price of a product without a
        price typed by hand. A price that cannot be converted leaves the cost as it was and
        is applied by the next sync (its fingerprint and Microsoft's price are not recorded).
        """
        now = fields.Datetime.now()
        lang = instance.lang or "en_US"
        Product = self.with_company(instance.company_id).with_context(
            lang=lang, active_test=False, tracking_disable=True, esd_rule_price=True
        )

        def price_values(item, fixed):
            factor = factors.get(item.currency)
            if factor is None:
                return {"esd_fingerprint": ""}
            cost = item.price * factor
            values = {"standard_price": cost}
            price = None if fixed else instance._esd_rule_price(cost)
            if price is not None:
                values["list_price"] = price
            return values

        # website_sale's default sequence is one query per product: the catalog computes it once
        # (new products last in the shop, 5 apart, as that default does).
        first = Product._default_website_sequence()
        created = Product.create(
            [
                {
                    "website_sequence": first + 5 * index,
                    **self._esd_item_values(item, now),
                    "is_esd": True,
                    "esd_instance_id": instance.id,
                    "esd_product_id": item.product_id,
                    "esd_catalog_status": "new",
                    "type": "service",
                    "invoice_policy": "delivery",
                    "sale_ok": False,
                    "purchase_ok": False,
                    "list_price": 0.0,
                    "company_id": instance.company_id.id,
                    **price_values(item, False),
                }
                for index, item in enumerate(plan.create)
            ]
        )
        updated = Product.browse([record_id for record_id, _item, _status in plan.update])
        for (_record_id, item, status), product in zip(plan.update, updated, strict=True):
            values = {**self._esd_item_values(item, now), "esd_catalog_status": status}
            priced = price_values(item, product.esd_price_fixed)
            if "standard_price" not in priced:
                # Not converted: Microsoft's price waits for the sync that can convert it.
                del values["esd_cis_price"], values["esd_cis_currency"]
            product.write({**values, **priced})
        discontinued = Product.browse([record_id for record_id, _item in plan.discontinue])
        if discontinued:
            discontinued.write(
                {
                    "esd_catalog_status": "discontinued",
                    "sale_ok": False,
                    "is_published": False,
                    "esd_last_sync": now,
                }
            )
        return {"new": created, "updated": updated, "discontinued": discontinued}

    def action_esd_activate_for_sale(self):
        """Make reviewed ESD products sellable (bulk action on the catalog list): those that can
        be sold are activated, the others are listed with what they lack."""
        check_caller(self, ESD_MANAGER, "read")
        products = self.sudo().filtered("is_esd")
        check_companies(self.env, products.esd_instance_id.company_id, self.env._("A product"))
        discontinued = products.filtered(lambda p: p.esd_catalog_status == "discontinued")
        unpriced = (products - discontinued).filtered(lambda p: p.list_price <= 0)
        problems = []
        if discontinued:
            problems.append(
                self.env._(
                    "Microsoft discontinued: %s", ", ".join(discontinued.mapped("display_name"))
                )
            )
        if unpriced:
            problems.append(
                self.env._(
                    "No sales price yet (set one, then activate them): %s",
                    ", ".join(unpriced.mapped("display_name")),
                )
            )
        activated = products - discontinued - unpriced
        if not activated:
            raise UserError(
                self.env._(
                    "Nothing was activated. Fix these products first:\n%s", "\n".join(problems)
                )
            )
        activated.write({"sale_ok": True, "esd_catalog_status": "active"})
        message = self.env._("%s products can now be sold.", len(activated))
        if problems:
            return notification(
                self.env._("Activated for sale, some left out"),
                message + " " + self.env._("Not activated:") + " " + " ".join(problems),
                "warning",
                next_action=CLOSE,
            )
        return notification(self.env._("Activated for sale"), message, next_action=CLOSE)

    def action_esd_price_from_rule(self):
        """Hand the Sales Price of these ESD products back to their instance's rule (bulk
        action on the catalog list): no longer fixed, priced from their cost at once."""
        check_caller(self, ESD_MANAGER, "read")
        products = self.sudo().filtered("is_esd").with_context(active_test=False)
        check_companies(self.env, products.esd_instance_id.company_id, self.env._("A product"))
        no_rule = products.filtered(lambda p: not p.esd_instance_id.esd_price_from_cost)
        no_cost = (products - no_rule).filtered(
            lambda p: not p.with_company(p.esd_instance_id.company_id).standard_price
        )
        problems = []
        if no_rule:
            problems.append(
                self.env._(
                    "Their instance has no sales price rule (Sales Prices from Cost): %s",
                    ", ".join(no_rule.mapped("display_name")),
                )
            )
        if no_cost:
            problems.append(
                self.env._(
                    "No cost yet (no exchange rate for Microsoft's currency?): %s",
                    ", ".join(no_cost.mapped("display_name")),
                )
            )
        if problems:
            raise UserError(
                self.env._(
                    "No price was changed. Fix these products first:\n%s", "\n".join(problems)
                )
            )
        products.write({"esd_price_fixed": False})
        return notification(
            self.env._("Priced from the rule"),
            self.env._("%s products now take their Sales Price from their cost.", len(products)),
            next_action=CLOSE,
        )

    def action_esd_publish_on_website(self):
        """Publish activated ESD products in the shop (bulk action on the catalog list)."""
        check_caller(self, ESD_MANAGER, "read")
        products = self.sudo().filtered("is_esd")
        check_companies(self.env, products.esd_instance_id.company_id, self.env._("A product"))
        not_for_sale = products.filtered(
            lambda p: not p.sale_ok or p.esd_catalog_status == "discontinued"
        )
        if not_for_sale:
            raise UserError(
                self.env._(
                    "Nothing was published. Activate these products for sale first:\n%s",
                    ", ".join(not_for_sale.mapped("display_name")),
                )
            )
        products.write({"is_published": True})
        return notification(
            self.env._("Published"),
            self.env._("%s products are in the shop.", len(products)),
            next_action=CLOSE,
        )
