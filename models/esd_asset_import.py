from odoo import api, models
from odoo.exceptions import ValidationError


class EsdAsset(models.Model):
    """A license has an Odoo sale, unless it was imported from CIS (sold before Odoo).

    An imported license has no order, order line or invoice, sends no email, belongs to its
    instance's company, and is otherwise a license like any other: its key is sealed, the
    status cron refreshes it, and it is returned under the usual rules (a credit note only
    where an invoice exists, so none for it). See wizards/esd_license_import.py.
    """

    _inherit = "esd.asset"

    @api.depends("sale_order_id.company_id", "instance_id.company_id")
    def _compute_company_id(self):
        for asset in self:
            asset.company_id = asset.sale_order_id.company_id or asset.instance_id.company_id

    @api.constrains("sale_order_id", "imported")
    def _check_sale_order(self):
        for asset in self:
            if not asset.sale_order_id and not asset.imported:
                raise ValidationError(
                    self.env._(
                        "%s: a license is sold on an order, unless it was imported from CIS.",
                        asset.name,
                    )
                )
