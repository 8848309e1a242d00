import hashlib
import json
import secrets

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools.mail import email_normalize_all


class EsdMailGrant(models.Model):
    """The right of one queued email to carry one license's key, recorded by the license email
    job as it queues the email (models/esd_asset_provisioning.py).

    The email holds two random markers where the job put the key block; as the email leaves,
    mail.mail puts the key and activation link in their place only if the email is still, to the
    byte, the one the job made for these addresses (models/mail_mail.py). No user reads, creates,
    writes or deletes a grant (no access rule at all, ESD managers and administrators included):
    an email made any other way (a template sent by hand, the composer, a message, a copy of the
    markers) carries no key.
    """

    _name = "esd.mail.grant"
    _description = "Microsoft ESD License Email Grant"

    mail_id = fields.Many2one(
        "mail.mail", required=True, readonly=True, index=True, ondelete="cascade"
    )
    asset_id = fields.Many2one(
        "esd.asset", required=True, readonly=True, index=True, ondelete="cascade"
    )
    addresses = fields.Char(readonly=True, help="The exact addresses the job queued it for.")
    digest = fields.Char(readonly=True)
    key_marker = fields.Char(readonly=True)
    link_marker = fields.Char(readonly=True)

    _sql_constraints = [
        ("mail_unique", "UNIQUE(mail_id)", "An email carries at most one license's key."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(self.env._("Only the license email job grants an email a key."))
        return super().create(vals_list)

    def write(self, vals):
        if vals:
            raise AccessError(self.env._("A license email grant never changes."))
        return super().write(vals)

    # ------------------------------------------------------------------ business
    @staticmethod
    def _esd_new_markers():
        """Two random markers for the key and the activation link of one email."""
        return (
            f"ESD-KEY-{secrets.token_hex(16)}",
            f"https://esd-activation-{secrets.token_hex(16)}.invalid/",
        )

    @staticmethod
    def _esd_fingerprint(mail):
        """What the email is, as it would leave: body, addresses, sender, subject, headers,
        attachments. Any change after the job made it changes this."""
        described = {
            "body_html": mail.body_html or "",
            "email_to": mail.email_to or "",
            "email_cc": mail.email_cc or "",
            "reply_to": mail.reply_to or "",
            "email_from": mail.email_from or "",
            "subject": mail.subject or "",
            "headers": mail.headers or "",
            "recipients": sorted(mail.recipient_ids.ids),
            "attachments": sorted(mail.attachment_ids.ids),
            "model": mail.model or "",
            "res_id": mail.res_id or 0,
        }
        return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()

    def _esd_record(self, mail, asset, markers):
        """Grant ``mail`` (as the job just created it) the key of ``asset``."""
        return self.sudo().create(
            {
                "mail_id": mail.id,
                "asset_id": asset.id,
                "addresses": ",".join(sorted(email_normalize_all(mail.email_to or ""))),
                "digest": self._esd_fingerprint(mail),
                "key_marker": markers[0],
                "link_marker": markers[1],
            }
        )

    def _esd_holds_for(self, mail):
        """Whether ``mail`` is still exactly the email the job granted."""
        self.ensure_one()
        return (
            self.mail_id == mail
            and ",".join(sorted(email_normalize_all(mail.email_to or ""))) == self.addresses
            and self._esd_fingerprint(mail) == self.digest
        )
