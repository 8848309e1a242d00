import logging

from markupsafe import escape

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError

from .esd_asset_provisioning import WELCOME_QUEUE

_logger = logging.getLogger(__name__)


class MailMail(models.Model):
    _inherit = "mail.mail"

    esd_asset_id = fields.Many2one(
        "esd.asset",
        "Microsoft ESD License",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The license this email was made for by the license email job; it carries the key "
        "only if the job granted it (esd.mail.grant) and it is unchanged as it leaves.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        queue = WELCOME_QUEUE.get()
        if any(vals.get("esd_asset_id") for vals in vals_list):
            # Only the license email job links an email to a license (below), whoever asks.
            raise AccessError(
                self.env._("Only Odoo's license email job links an email to a license.")
            )
        made = []
        for vals in vals_list if queue else ():
            planned = queue.get(vals.get("res_id")) if vals.get("model") == "esd.asset" else None
            if planned:
                # An email Odoo rendered from the license template in the one batch the license
                # email job queues: addressed to the addresses the license recorded at its sale
                # (never to the template's or a partner's current ones), kept out of the
                # license's chatter, linked to its license.
                vals.update(
                    esd_asset_id=vals["res_id"],
                    email_to=planned["email_to"],
                    email_cc=False,
                    recipient_ids=[Command.clear()],
                    model=False,
                    res_id=False,
                )
                made.append((vals, planned))
        mails = super().create(vals_list)
        if made:
            by_vals = {id(vals): mail for vals, mail in zip(vals_list, mails, strict=True)}
            Grant = self.env["esd.mail.grant"]
            for vals, planned in made:
                mail = by_vals[id(vals)]
                Grant._esd_record(mail, mail.esd_asset_id, planned["markers"])
        return mails

    def write(self, vals):
        if "esd_asset_id" in vals:
            raise AccessError(
                self.env._("Only Odoo's license email job links an email to a license.")
            )
        return super().write(vals)

    # ------------------------------------------------------------------ sending
    def _esd_grant(self):
        """The grant of this email to carry a key, if the license email job made one."""
        self.ensure_one()
        return self.env["esd.mail.grant"].sudo().search([("mail_id", "=", self.id)], limit=1)

    def _send(self, auto_commit=False, raise_exception=False, smtp_session=None, **kwargs):
        """A license email changed after the job made it (its body, addresses, sender...) does
        not leave: it fails with the reason, and its license says so."""
        tampered = self.browse()
        for mail in self.filtered("esd_asset_id"):
            grant = mail._esd_grant()
            if grant and not grant._esd_holds_for(mail):
                tampered |= mail
        if tampered:
            reason = self.env._(
                "This license email was changed after Odoo prepared it: it was not sent. Resend "
                "it from the license."
            )
            _logger.warning(
                "license emails %s changed after they were queued: not sent", tampered.ids
            )
            tampered.write({"state": "exception", "failure_reason": reason})
            tampered._postprocess_sent_message(
                success_pids=[], failure_reason=reason, failure_type="unknown"
            )
        return super(MailMail, self - tampered)._send(
            auto_commit=auto_commit,
            raise_exception=raise_exception,
            smtp_session=smtp_session,
            **kwargs,
        )

    def _prepare_outgoing_list(self, mail_server=False, recipients_follower_status=None):
        """A license email leaves once per recorded address: no recipient sees the others."""
        emails = super()._prepare_outgoing_list(
            mail_server=mail_server, recipients_follower_status=recipients_follower_status
        )
        if not self.esd_asset_id or not self._esd_grant():
            return emails
        split = []
        for email in emails:
            addresses = email.get("email_to") or []
            if len(addresses) <= 1 or email.get("partner_id"):
                split.append(email)
                continue
            for address in addresses:
                split.append(
                    dict(
                        email,
                        email_to=[address],
                        email_to_normalized=[
                            a for a in email.get("email_to_normalized", []) if a in address.lower()
                        ],
                    )
                )
        return split

    def _prepare_outgoing_body(self):
        """The key and activation link go in as the email leaves, in the one place the job
        put them, if the job granted this very email and it is unchanged."""
        body = super()._prepare_outgoing_body()
        if not self.esd_asset_id or not body:
            return body
        grant = self._esd_grant()
        if not grant or not grant._esd_holds_for(self):
            return body
        token, link = grant.asset_id._esd_secrets()[grant.asset_id.id]
        return body.replace(grant.key_marker, escape(token or "")).replace(
            grant.link_marker, escape(link or "")
        )

    def _postprocess_sent_message(self, success_pids, failure_reason=False, failure_type=None):
        """A license email left or failed: the license email job records it on the license
        (this transaction, the mail queue's, never writes a license)."""
        if any(mail.esd_asset_id for mail in self.sudo()):
            self.env.ref("microsoft_esd.ir_cron_esd_welcome").sudo()._trigger()
        return super()._postprocess_sent_message(
            success_pids, failure_reason=failure_reason, failure_type=failure_type
        )
