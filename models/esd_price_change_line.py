from odoo import api, fields, models


class EsdPriceChangeLine(models.Model):
    """A product's old and new price on one pricelist (a reseller tier) after a price change."""

    _name = "esd.price.change.line"
    _description = "Microsoft ESD Price Change per Tier"
    _order = "change_id, pricelist_id"

    change_id = fields.Many2one(
        "esd.price.change", required=True, readonly=True, index=True, ondelete="cascade"
    )
    product_tmpl_id = fields.Many2one(
        related="change_id.product_tmpl_id", store=True, index=True, string="Product"
    )
    company_id = fields.Many2one(related="change_id.company_id", store=True, string="Company")
    # Empty: the Sales Price, what a buyer without a pricelist pays.
    pricelist_id = fields.Many2one("product.pricelist", readonly=True, ondelete="cascade")
    currency_id = fields.Many2one("res.currency", compute="_compute_currency_id", store=True)
    price_old = fields.Monetary("Old Price", readonly=True)
    price_new = fields.Monetary("New Price", readonly=True)

    @api.depends("pricelist_id.currency_id", "change_id.currency_id")
    def _compute_currency_id(self):
        for line in self:
            line.currency_id = line.pricelist_id.currency_id or line.change_id.currency_id

    @api.depends("pricelist_id")
    def _compute_display_name(self):
        for line in self:
            line.display_name = line.pricelist_id.display_name or self.env._("Sales Price")

    def _esd_announcement(self):
        """What a reseller is told of these lines (its own prices): a list of dicts, one per
        product. Ids and prices only; the argument of
        ``res.partner._esd_price_changes_announced``."""
        return [
            {
                "product_tmpl_id": line.product_tmpl_id.id,
                "esd_product_id": line.product_tmpl_id.esd_product_id,
                "name": line.product_tmpl_id.name,
                "instance_id": line.change_id.instance_id.id,
                "pricelist_id": line.pricelist_id.id,
                "currency": line.currency_id.name,
                "old_price": line.price_old,
                "new_price": line.price_new,
                "changed_at": fields.Datetime.to_string(line.change_id.date),
            }
            for line in self
        ]
