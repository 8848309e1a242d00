from odoo import api, fields, models


class EsdCatalogSyncResult(models.TransientModel):
    """The summary an operator sees after a catalog synchronisation."""

    _name = "esd.catalog.sync.result"
    _description = "Microsoft ESD Catalog Sync Summary"

    instance_id = fields.Many2one("esd.instance", required=True, readonly=True, ondelete="cascade")
    correlation_id = fields.Char(readonly=True)
    total_count = fields.Integer("Products in CIS", readonly=True)
    unchanged_count = fields.Integer("Unchanged", readonly=True)
    skipped_count = fields.Integer(
        "Discontinued at Microsoft, Not Created",
        readonly=True,
        help="Listed by CIS as discontinued and never sold here: no product is created for them.",
    )
    new_product_ids = fields.Many2many(
        "product.template", "esd_sync_result_new_rel", string="New Products", readonly=True
    )
    updated_product_ids = fields.Many2many(
        "product.template", "esd_sync_result_updated_rel", string="Changed Products", readonly=True
    )
    discontinued_product_ids = fields.Many2many(
        "product.template",
        "esd_sync_result_discontinued_rel",
        string="Discontinued Products",
        readonly=True,
    )
    price_change_ids = fields.Many2many(
        "esd.price.change",
        "esd_sync_result_price_change_rel",
        string="Price Changes",
        readonly=True,
    )
    below_cost_product_ids = fields.Many2many(
        "product.template",
        "esd_sync_result_below_cost_rel",
        string="Priced Below Cost",
        readonly=True,
    )
    price_warnings = fields.Text(readonly=True)
    new_count = fields.Integer(compute="_compute_counts")
    updated_count = fields.Integer(compute="_compute_counts")
    discontinued_count = fields.Integer(compute="_compute_counts")
    price_change_count = fields.Integer(compute="_compute_counts")
    below_cost_count = fields.Integer(compute="_compute_counts")
    summary = fields.Char(compute="_compute_counts")

    @api.depends(
        "new_product_ids",
        "updated_product_ids",
        "discontinued_product_ids",
        "skipped_count",
        "price_change_ids",
        "below_cost_product_ids",
        "price_warnings",
    )
    def _compute_counts(self):
        for result in self:
            result.new_count = len(result.new_product_ids)
            result.updated_count = len(result.updated_product_ids)
            result.discontinued_count = len(result.discontinued_product_ids)
            result.price_change_count = len(result.price_change_ids)
            result.below_cost_count = len(result.below_cost_product_ids)
            result.summary = self.env._(
                "Catalog synchronised: %(new)s new, %(updated)s changed, %(discontinued)s "
                "discontinued, %(unchanged)s unchanged, %(skipped)s discontinued at Microsoft and "
                "not created (%(total)s in CIS; correlation id %(correlation)s).",
                new=result.new_count,
                updated=result.updated_count,
                discontinued=result.discontinued_count,
                unchanged=result.unchanged_count,
                skipped=result.skipped_count,
                total=result.total_count,
                correlation=result.correlation_id,
            )
            prices = result.instance_id._esd_price_summary(
                {
                    "price_changes": result.price_change_ids,
                    "below_cost": result.below_cost_product_ids,
                    "warnings": (result.price_warnings or "").splitlines(),
                }
            )
            if prices:
                result.summary += " " + prices

    def action_open(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Get Services Definition"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def _open_products(self, products, title):
        action = self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_catalog")
        action.update(
            name=title,
            domain=[("id", "in", products.ids)],
            context={"active_test": False},
            target="current",
        )
        return action

    def action_open_new(self):
        return self._open_products(self.new_product_ids, self.env._("New ESD products"))

    def action_open_updated(self):
        return self._open_products(self.updated_product_ids, self.env._("Changed ESD products"))

    def action_open_below_cost(self):
        return self._open_products(
            self.below_cost_product_ids, self.env._("ESD products priced below cost")
        )

    def action_open_price_changes(self):
        return self.price_change_ids._esd_open(self.env._("Price changes of this sync"))

    def action_open_discontinued(self):
        return self._open_products(
            self.discontinued_product_ids, self.env._("Discontinued ESD products")
        )
