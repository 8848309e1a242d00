from odoo import fields, models


class EsdPartnerAccount(models.Model):
    """The CIS account of a partner on one ESD instance."""

    _name = "esd.partner.account"
    _description = "Microsoft ESD Partner Account"
    _order = "partner_id, instance_id"

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade", index=True)
    instance_id = fields.Many2one("esd.instance", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="instance_id.company_id", store=True, index=True)
    account_id = fields.Char("CIS Account ID", readonly=True, copy=False)
    role = fields.Selection([("reseller", "Reseller"), ("user", "User")], readonly=True)
    sync_status = fields.Selection(
        [("not_synced", "Not synced"), ("synchronized", "Synchronized"), ("failed", "Failed")],
        default="not_synced",
        required=True,
        readonly=True,
    )
    sync_error = fields.Text(readonly=True)
    synced_on = fields.Datetime(readonly=True)

    _sql_constraints = [
        (
            "partner_instance_unique",
            "UNIQUE(partner_id, instance_id)",
            "A partner has one CIS account per instance.",
        ),
    ]
