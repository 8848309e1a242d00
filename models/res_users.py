from odoo import fields, models


class ResUsers(models.Model):
    _inherit = "res.users"

    esd_key_holder = fields.Boolean(
        "License Key Holder",
        copy=False,
        readonly=True,
        help="This portal user sees in full the license keys of its company (customer or "
        "billed reseller). Set by an ESD manager on the contact (License Key Holder), never by "
        "editing contacts; internal users never see keys this way (they use Reveal key).",
    )
