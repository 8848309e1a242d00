from odoo import models


class PortalWizardUser(models.TransientModel):
    _inherit = "portal.wizard.user"

    def _send_email(self):
        """An invitation (again) lets whoever reads it sign in: the login's grants end."""
        self.env["esd.grant"]._esd_end_for_users(
            self.user_id.sudo(), self.env._("the login was invited again")
        )
        return super()._send_email()
