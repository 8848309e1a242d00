from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError


class EsdUninstall(models.TransientModel):
    """A system administrator confirms in words what uninstalling Microsoft ESD deletes."""

    _name = "esd.uninstall"
    _description = "Uninstall Microsoft ESD"

    # The defaults give the form's new record what the computes give a saved one (a new record's
    # form computes no field that depends on nothing it fills in).
    license_count = fields.Integer(
        "Licenses With a Key",
        compute="_compute_phrase",
        default=lambda self: self._esd_delivered_count(),
    )
    phrase = fields.Char(
        "Type This",
        compute="_compute_phrase",
        default=lambda self: self._esd_phrase(self._esd_delivered_count()),
    )
    confirmation = fields.Char(help="Type the sentence above to confirm what is deleted.")

    @api.model
    def _esd_delivered_count(self):
        """Licenses that hold a key (delivered ones, returned ones included): all deleted."""
        Asset = self.env["esd.asset"].sudo().with_context(active_test=False)
        return Asset.search_count([("token_tail", "!=", False)])

    @api.model
    def _esd_phrase(self, count):
        return self.env._("DELETE %s LICENSES", count)

    @api.depends_context("uid")
    def _compute_phrase(self):
        count = self._esd_delivered_count()
        for wizard in self:
            wizard.license_count = count
            wizard.phrase = self._esd_phrase(count)

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
