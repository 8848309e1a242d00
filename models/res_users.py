from odoo import models


class ResUsers(models.Model):
    _inherit = "res.users"

    # A change of these ends the login's ESD grants (models/esd_grant.py): it may no longer be
    # the person the grant was given to.
    _ESD_IDENTITY_FIELDS = ("login", "email", "partner_id")

    def write(self, vals):
        changed = self.browse()
        for name in self._ESD_IDENTITY_FIELDS:
            if name in vals:
                changed |= self.filtered(
                    lambda u, n=name: (
                        (u[n].id if n == "partner_id" else u[n] or False) != (vals[n] or False)
                    )
                )
        share_before = {user: user.share for user in self}
        result = super().write(vals)
        Grant = self.env["esd.grant"]
        if changed:
            Grant._esd_end_for_users(changed, self.env._("its login, email or contact changed"))
        archived = self.filtered(lambda u: not u.active) if "active" in vals else self.browse()
        if archived:
            Grant._esd_end_for_users(archived, self.env._("the login was archived"))
        internal = self.filtered(lambda u: share_before[u] and not u.share)
        if internal:
            Grant._esd_end_for_users(internal, self.env._("the login became an internal user"))
        return result
