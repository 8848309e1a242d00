from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .notification import notification


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    esd_instance_count = fields.Integer(compute="_compute_esd_instance_count")
    esd_connected_count = fields.Integer(compute="_compute_esd_instance_count")
    esd_keys_encrypted = fields.Boolean(
        "License Keys Encrypted at Rest",
        compute="_compute_esd_keys",
        help="An esd_token_key in Odoo's configuration file encrypts every license key; "
        "without one, keys are sealed with the database's own secret.",
    )
    esd_keys_error = fields.Char(compute="_compute_esd_keys")
    esd_keys_outdated_count = fields.Integer(
        compute="_compute_esd_keys",
        help="Licenses whose key is not sealed with the current secret yet: run Re-encrypt.",
    )

    @api.depends("company_id")
    def _compute_esd_instance_count(self):
        Instance = self.env["esd.instance"]
        for settings in self:
            company = [("company_id", "=", settings.company_id.id)]
            settings.esd_instance_count = Instance.search_count(company)
            settings.esd_connected_count = Instance.search_count(
                [*company, ("state", "=", "connected")]
            )

    # company_id has a default: the settings form's first onchange computes these with it.
    @api.depends("company_id")
    def _compute_esd_keys(self):
        Asset = self.env["esd.asset"]
        try:
            vault, error = Asset._esd_vault(), False
        except UserError as exc:
            vault, error = Asset._esd_vault(strict=False), str(exc)
        # Keys sealed with another secret (or stored in clear once): counted, nothing decrypted.
        self.env.cr.execute(
            "SELECT count(*) FROM esd_asset WHERE token_sealed IS NOT NULL "
            "AND token_sealed NOT LIKE %s",
            [vault.current_prefix + "%"],
        )
        outdated = self.env.cr.fetchone()[0]
        for settings in self:
            settings.esd_keys_encrypted = vault.encrypting
            settings.esd_keys_error = error
            settings.esd_keys_outdated_count = outdated

    def action_open_esd_instances(self):
        return self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_instance")

    def action_esd_edit_license_template(self):
        """The license email of the current company."""
        return self.env["esd.instance"]._esd_edit_license_template(self.env.company)

    def action_esd_reencrypt_keys(self):
        """Re-seal and re-hash every license key, of every company, with the current
        esd_token_key: for system administrators, who set that secret in Odoo's configuration
        file."""
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(
                self.env._(
                    "Only system administrators re-encrypt license keys: it rewrites the keys of "
                    "every company, with the secret of Odoo's configuration file."
                )
            )
        count = self.env["esd.asset"]._esd_reencrypt_all()
        return notification(
            self.env._("License keys re-encrypted"),
            self.env._("%s license keys are now sealed with the current secret.", count),
        )
