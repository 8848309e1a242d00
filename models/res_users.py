from odoo import fields, models

# Computed per requesting user from the flag below.
KEY_FIELDS = ["token", "activation_link", "key_visible"]


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

    def write(self, vals):
        result = super().write(vals)
        if "esd_key_holder" in vals:
            # Who sees which key was computed from the old flag: forget it.
            self.env["esd.asset"].invalidate_model(KEY_FIELDS)
        return result
