from odoo import models
from odoo.exceptions import UserError


class IrModuleModule(models.Model):
    _inherit = "ir.module.module"

    def button_uninstall(self):
        """Uninstalling Microsoft ESD (itself, or a module it depends on) deletes every license
        record: refused while delivered licenses exist, unless a system administrator confirmed
        it in words (Settings > Microsoft ESD > Uninstall, the esd.uninstall wizard)."""
        if not self.env.context.get("esd_uninstall_confirmed"):
            self._esd_check_uninstall()
        return super().button_uninstall()

    def _esd_check_uninstall(self):
        addon = self.env.ref("base.module_microsoft_esd", raise_if_not_found=False)
        if not addon or addon not in self | self.downstream_dependencies():
            return
        delivered = self.env["esd.uninstall"]._esd_delivered_count()
        if not delivered:
            return
        raise UserError(
            self.env._(
                "Uninstalling %(modules)s deletes the %(count)s delivered licenses of Microsoft "
                "ESD: their keys, activation links, CIS license and account ids and returns in "
                "progress. The licenses and the accounts stay at Microsoft, their keys valid, but "
                "Odoo can no longer show, return or credit them. Export the licenses first if "
                "you need them; then a system administrator confirms in Settings > Sales > "
                "Microsoft ESD > Uninstall Microsoft ESD.",
                modules=", ".join(self.mapped("shortdesc")),
                count=delivered,
            )
        )
