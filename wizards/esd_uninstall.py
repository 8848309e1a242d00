from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError


class EsdUninstall(models.TransientModel):
    """A system administrator confirms in words what uninstalling Microsoft ESD deletes."""

    _name = "esd.uninstall"
    _description = "Uninstall Microsoft ESD"

    license_count = fields.Integer("Delivered Licenses", compute="_compute_phrase")
    phrase = fields.Char("Type This", compute="_compute_phrase")
    confirmation = fields.Char(help="Type the sentence above to confirm what is deleted.")

    @api.model
    def _esd_delivered_count(self):
        Asset = self.env["esd.asset"].sudo().with_context(active_test=False)
        return Asset.search_count([("token_tail", "!=", False)])

    @api.depends_context("uid")
    def _compute_phrase(self):
        count = self._esd_delivered_count()
        for wizard in self:
            wizard.license_count = count
            wizard.phrase = self.env._("DELETE %s LICENSES", count)

    def action_uninstall(self):
        """Uninstall the addon once the sentence was typed (system administrators only)."""
        self.ensure_one()
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(self.env._("Only system administrators uninstall Microsoft ESD."))
        if (self.confirmation or "").strip() != self.phrase:
            raise UserError(
                self.env._("Type exactly “%s” to uninstall; nothing was done.", self.phrase)
            )
        addon = self.env.ref("base.module_microsoft_esd")
        return addon.with_context(esd_uninstall_confirmed=True).button_immediate_uninstall()
