from markupsafe import escape

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError

from ..microsoft_esd import licenses
from .esd_asset_provisioning import MAIL_KEY_PLACEHOLDER, MAIL_LINK_PLACEHOLDER, WELCOME_QUEUE


class MailMail(models.Model):
    _inherit = "mail.mail"

    esd_asset_id = fields.Many2one(
        "esd.asset",
        "Microsoft ESD License",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The license whose key this email carries as it leaves (queued emails hold "
        "placeholders, and are deleted once sent).",
    )

    @api.model_create_multi
    def create(self, vals_list):
        queue = WELCOME_QUEUE.get()
        for vals in vals_list if queue else ():
            if vals.get("model") == "esd.asset" and vals.get("res_id") in queue:
                # A license email Odoo rendered from the license template, in the one batch
                # esd.asset queues: linked to its license (whose key it gets as it leaves),
                # addressed to the license's recipients only, kept out of the license's chatter.
                asset_id = vals["res_id"]
                vals.update(
                    esd_asset_id=asset_id,
                    recipient_ids=[Command.set(queue[asset_id])],
                    model=False,
                    res_id=False,
                )
        if any(vals.get("esd_asset_id") for vals in vals_list):
            self._esd_check_license_email()
        return super().create(vals_list)

    def write(self, vals):
        if "esd_asset_id" in vals:
            self._esd_check_license_email()
        return super().write(vals)

    def _esd_check_license_email(self):
        """Only Odoo's own code (sudo) links an email to a license: that email gets the key."""
        if not self.env.su:
            raise AccessError(self.env._("Only Odoo links an email to a license's key."))

    def _prepare_outgoing_body(self):
        """A license email gets its key and activation link as it leaves, for the recipients
        Odoo chose (the customer and the instance's extra recipients), never stored."""
        body = super()._prepare_outgoing_body()
        asset = self.esd_asset_id.sudo()
        if not asset or MAIL_KEY_PLACEHOLDER not in (body or ""):
            return body
        if self.email_to or self.email_cc or not self.recipient_ids <= asset.welcome_partner_ids:
            token, link = licenses.mask(asset.token_tail), ""
        else:
            token, link = asset._esd_secrets()[asset.id]
        return body.replace(MAIL_KEY_PLACEHOLDER, escape(token or "")).replace(
            MAIL_LINK_PLACEHOLDER, escape(link or "")
        )
