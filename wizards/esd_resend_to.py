from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize, formataddr
from odoo.tools.mail import email_split_and_format

from ..models.esd_access import check_caller


class EsdResendTo(models.TransientModel):
    """Resend to...: an ESD user sends a license's key to a new address of its customer; the
    chatter records the old and new address and the customer is told at its old one."""

    _name = "esd.resend.to"
    _description = "Send a License Email to a New Address"

    asset_id = fields.Many2one("esd.asset", "License", required=True, readonly=True)
    current_addresses = fields.Char(compute="_compute_current_addresses")
    email = fields.Char("New Address of the Customer", required=True)

    @api.depends("asset_id")
    def _compute_current_addresses(self):
        for wizard in self:
            wizard.current_addresses = wizard.asset_id.sudo().mail_to

    def action_send(self):
        self.ensure_one()
        asset = self.asset_id
        check_caller(asset)
        email = email_normalize(self.email or "")
        if not email:
            raise UserError(
                self.env._("Give one valid email address (name@company.com); nothing was sent.")
            )
        asset = asset.sudo()
        if not (asset.sync_status == "synchronized" and asset.state == "active"):
            raise UserError(self.env._("Only active, delivered licenses can be sent again."))
        old = email_split_and_format(asset.mail_to or "")
        old_customer = old[:1] if asset.customer_id in asset.welcome_partner_ids else []
        new_customer = formataddr((asset.customer_id.name or "", email))
        addresses = [new_customer, *(old[1:] if old_customer else old)]
        asset.write(
            {
                "mail_to": ", ".join(addresses),
                "welcome_partner_ids": [fields.Command.link(asset.customer_id.id)],
            }
        )
        asset.message_post(
            body=self.env._(
                "%(user)s sent the license key to a new address of the customer: %(old)s → "
                "%(new)s.",
                user=self.env.user.name,
                old=", ".join(old_customer) or self.env._("none"),
                new=new_customer,
            ),
            subtype_xmlid="mail.mt_note",
        )
        if old_customer and email_normalize(old_customer[0]) != email:
            self._esd_tell_old_address(asset, old_customer[0], new_customer)
        asset._esd_send_welcome()
        return {"type": "ir.actions.act_window_close"}

    def _esd_tell_old_address(self, asset, old, new):
        """A note to the customer's old address (never the key): where its key was sent."""
        company = asset.company_id
        body = Markup("<p>%s</p><p>%s</p>") % (
            self.env._(
                "The license email of %(license)s (%(product)s) was sent to a new address at "
                "the request of %(company)s: %(new)s.",
                license=asset.name,
                product=asset.product_id.display_name,
                company=company.name,
                new=new,
            ),
            self.env._(
                "If you did not ask for this, contact %(company)s at once: %(contact)s.",
                company=company.name,
                contact=company.email or company.phone or "",
            ),
        )
        self.env["mail.mail"].sudo().create(
            {
                "subject": self.env._(
                    "Your Microsoft license %s was sent to a new address", asset.name
                ),
                "email_from": company.email_formatted or self.env.user.email_formatted,
                "email_to": old,
                "body_html": body,
                "auto_delete": True,
            }
        )
