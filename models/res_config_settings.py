from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    esd_instance_count = fields.Integer(compute="_compute_esd_instance_count")
    esd_connected_count = fields.Integer(compute="_compute_esd_instance_count")

    def _compute_esd_instance_count(self):
        Instance = self.env["esd.instance"]
        for settings in self:
            settings.esd_instance_count = Instance.search_count([])
            settings.esd_connected_count = Instance.search_count([("state", "=", "connected")])

    def action_open_esd_instances(self):
        return self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_instance")
