from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    esd_instance_count = fields.Integer(compute="_compute_esd_instance_count")
    esd_connected_count = fields.Integer(compute="_compute_esd_instance_count")

    @api.depends("company_id")
    def _compute_esd_instance_count(self):
        Instance = self.env["esd.instance"]
        for settings in self:
            company = [("company_id", "=", settings.company_id.id)]
            settings.esd_instance_count = Instance.search_count(company)
            settings.esd_connected_count = Instance.search_count(
                [*company, ("state", "=", "connected")]
            )

    def action_open_esd_instances(self):
        return self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_instance")
