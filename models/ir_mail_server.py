from odoo import api, models


class IrMailServer(models.Model):
    _inherit = "ir.mail_server"

    @api.model_create_multi
    def create(self, vals_list):
        servers = super().create(vals_list)
        self._esd_mail_servers_changed()
        return servers

    def write(self, vals):
        result = super().write(vals)
        self._esd_mail_servers_changed()
        return result

    @api.model
    def _esd_mail_servers_changed(self):
        """License emails that could not leave before this change are sent again at once (by
        the license email job, which alone writes licenses): a new generation of servers."""
        generation = self.env["esd.asset"]._esd_mail_servers_generation()
        self.env["ir.config_parameter"].sudo().set_param(
            "microsoft_esd.mail_servers_generation", str(generation + 1)
        )
        self.env.ref("microsoft_esd.ir_cron_esd_welcome").sudo()._trigger()
