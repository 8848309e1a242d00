from odoo import fields, models

from ..microsoft_esd.provisioning import license_count


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    is_esd = fields.Boolean(related="product_id.product_tmpl_id.is_esd")
    esd_asset_ids = fields.One2many("esd.asset", "sale_line_id", string="Licenses")

    def _esd_split(self):
        """Make every ESD line of quantity N into N lines of quantity 1 (prices, taxes kept)."""
        for line in self.filtered("is_esd"):
            count = license_count(line.product_uom_qty)
            if count == 1:
                continue
            line.product_uom_qty = 1
            for _copy in range(count - 1):
                line.copy(
                    {"order_id": line.order_id.id, "product_uom_qty": 1, "sequence": line.sequence}
                )
