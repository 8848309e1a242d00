import logging

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError

from ..microsoft_esd import licenses
from ..microsoft_esd.contract import License
from ..microsoft_esd.errors import ConflictError, EsdError
from .esd_access import check_caller
from .esd_asset import INTERNAL
from .notification import RELOAD, notification

# The portal's Update status and Resend activation: at most once a minute per license.
PORTAL_INTERVAL = 60

_logger = logging.getLogger(__name__)


class EsdAsset(models.Model):
    """After the sale: status at Microsoft, returns and credit notes, cancellation requests."""

    _inherit = "esd.asset"

    token_status = fields.Selection(
        [
            ("activated", "Activated"),
            ("redeemed", "Redeemed"),
            ("return_accepted", "Return Accepted"),
        ],
        readonly=True,
        tracking=True,
    )
    return_status = fields.Selection(
        [("none", "None"), ("successful", "Successful")],
        readonly=True,
        default="none",
        tracking=True,
    )
    activation_date = fields.Datetime(readonly=True)
    invoice_line_id = fields.Many2one("account.move.line", readonly=True, copy=False)
    credit_note_line_id = fields.Many2one("account.move.line", readonly=True, copy=False)
    credit_note_id = fields.Many2one(related="credit_note_line_id.move_id", string="Credit Note")
    invoice_id = fields.Many2one(related="invoice_line_id.move_id", string="Invoice")
    invoice_amount = fields.Monetary(
        related="invoice_line_id.price_total", string="Invoice Amount", currency_field="currency_id"
    )
    quantity = fields.Float(related="sale_line_id.product_uom_qty", string="Quantity")
    uom_id = fields.Many2one(related="product_id.uom_id", string="Unit")
    cancel_request_state = fields.Selection(
        [("none", "None"), ("pending", "Pending"), ("rejected", "Rejected")],
        "Cancellation Request",
        default="none",
        readonly=True,
        copy=False,
        tracking=True,
    )
    cancel_request_comment = fields.Text(readonly=True, copy=False)
    cancel_requested_by = fields.Many2one("res.partner", readonly=True, copy=False, groups=INTERNAL)
    cancel_requested_on = fields.Datetime(readonly=True, copy=False)
    portal_status_checked_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)
    portal_email_resent_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)

    # ------------------------------------------------------------------ backend actions
    # Each checks its caller: a button's groups protect nothing against JSON-RPC.
    # After the check, the work runs as sudo (the order and its invoices may be another
    # salesperson's); the messages are still the user's.
    def action_update_license_status(self):
        """Ask CIS for the status of these licenses and apply the allowed transitions."""
        check_caller(self)
        return self.sudo()._esd_update_status()

    def action_resend_activation(self):
        check_caller(self)
        delivered = self.sudo()._esd_resend()
        return notification(
            _("Activation email sent"), _("%s license email(s) queued.", len(delivered))
        )

    def action_cancel_license(self):
        """Return the licenses to Microsoft, then credit their invoice line in full."""
        check_caller(self)
        return self.sudo()._esd_cancel()

    def action_approve_cancellation(self):
        check_caller(self)
        self.sudo()._esd_close_cancellation_activities()
        return self.sudo()._esd_cancel()

    def action_reject_cancellation(self):
        check_caller(self)
        pending = self.sudo().filtered(lambda a: a.cancel_request_state == "pending")
        pending.write({"cancel_request_state": "rejected"})
        pending.message_post(body=_("Cancellation request rejected."))
        pending._esd_close_cancellation_activities()
        return True

    # ------------------------------------------------------------------ portal operations
    # Private: the portal controller calls them after its own ownership check.
    def _esd_portal_update_status(self):
        self.ensure_one()
        self._esd_throttle("portal_status_checked_at", _("updated"))
        return self._esd_update_status()

    def _esd_portal_resend(self):
        self.ensure_one()
        self._esd_throttle("portal_email_resent_at", _("sent again"))
        return self._esd_resend()

    def _esd_throttle(self, field, done):
        """Refuse a portal operation done less than a minute ago on this license; else stamp it."""
        now = fields.Datetime.now()
        wait = licenses.wait_seconds(self.sudo()[field], now, PORTAL_INTERVAL)
        if wait:
            raise UserError(
                _(
                    "This license was %(done)s less than a minute ago: try again in %(wait)s "
                    "seconds.",
                    done=done,
                    wait=wait,
                )
            )
        self.sudo().write({field: now})

    # ------------------------------------------------------------------ status
    def _esd_update_status(self):
        assets = self.filtered(lambda a: a.sync_status == "synchronized")
        if not assets:
            raise UserError(_("Only delivered licenses have a status at Microsoft."))
        for instance, group in assets.grouped("instance_id").items():
            client = instance._esd_client()
            for asset in group:
                try:
                    reported = client.get_license(asset.esd_license_id)
                except EsdError as exc:
                    raise UserError(
                        _("%(license)s: %(error)s", license=asset.name, error=exc)
                    ) from None
                asset._esd_apply_status(reported)
        return True

    def _esd_apply_status(self, reported, correlation_id=None):
        """Apply what CIS reports if the transition is allowed; log it otherwise."""
        self.ensure_one()
        verdict = licenses.transition(self.token_status, reported.token_status)
        if verdict == "same":
            return verdict
        labels = dict(self._fields["token_status"].selection)
        if verdict == "refuse":
            self.message_post(
                body=_(
                    "CIS reports %(reported)s but the license is %(current)s here: not applied "
                    "(not an allowed transition). See Reconciliation.",
                    reported=labels.get(reported.token_status),
                    current=labels.get(self.token_status),
                )
            )
            return verdict
        values = {"token_status": reported.token_status}
        if reported.token_status == licenses.REDEEMED:
            values["activation_date"] = reported.activation_date or fields.Datetime.now()
        else:
            values.update(return_status="successful", state="cancelled")
        self.sudo().write(values)
        self.message_post(
            body=_("Status at Microsoft: %(status)s.", status=labels.get(reported.token_status))
        )
        return verdict

    @api.model
    def _cron_refresh_statuses(self):
        """Bulk refresh: one "changed since" call per instance, not one call per license."""
        for instance in self.env["esd.instance"].search([("state", "=", "connected")]):
            since = instance.license_status_synced_at or fields.Datetime.subtract(
                fields.Datetime.now(), days=365
            )
            started = fields.Datetime.now()
            try:
                changes = list(instance._esd_client().iter_license_changes(since))
            except (EsdError, UserError) as exc:
                _logger.warning("status refresh of ESD instance %s failed: %s", instance.id, exc)
                continue
            by_id = {change.license_id: change for change in changes}
            assets = self.search(
                [
                    ("instance_id", "=", instance.id),
                    ("esd_license_id", "in", list(by_id)),
                    ("sync_status", "=", "synchronized"),
                ]
            )
            for asset in assets:
                asset._esd_apply_status(by_id[asset.esd_license_id])
            instance.license_status_synced_at = started

    def _esd_resend(self):
        delivered = self.filtered(lambda a: a.sync_status == "synchronized" and a.state == "active")
        if not delivered:
            raise UserError(_("Only active, delivered licenses can be sent again."))
        delivered._esd_send_welcome()
        return delivered

    def _esd_return_refusal(self):
        self.ensure_one()
        if self.state != "active" or self.sync_status != "synchronized":
            return _("it is not an active, delivered license")
        return licenses.return_refusal(
            self.token_status,
            self.product_id.product_tmpl_id.esd_returnable,
            self.purchase_date,
            self.instance_id.return_window_days,
            fields.Date.context_today(self),
        )

    def _esd_check_returnable(self):
        """Refuse, saying why, unless every license of ``self`` can be returned now."""
        for asset in self:
            refusal = asset._esd_return_refusal()
            if refusal:
                raise UserError(
                    _(
                        "%(license)s cannot be cancelled: %(reason)s.",
                        license=asset.name,
                        reason=refusal,
                    )
                )

    def _esd_cancel(self):
        self._esd_check_returnable()
        problems = []
        for asset in self:
            try:
                returned = asset.instance_id._esd_client().return_license(
                    asset.esd_license_id, request_id=f"return-{asset.request_id}"
                )
            except ConflictError as exc:
                if exc.code == "LicenseRedeemed":
                    asset._esd_apply_status(asset._esd_redeemed_now())
                problems.append(_("%(license)s: %(error)s", license=asset.name, error=exc))
                continue
            except (EsdError, UserError) as exc:
                problems.append(_("%(license)s: %(error)s", license=asset.name, error=exc))
                continue
            asset.sudo().write(
                {
                    "state": "cancelled",
                    "token_status": returned.token_status,
                    "return_status": returned.return_status,
                    "cancel_request_state": "none",
                }
            )
            asset._esd_credit()
            asset.message_post(
                body=_(
                    "Returned to Microsoft (return %(status)s); credit note %(credit)s.",
                    status=returned.return_status,
                    credit=asset.credit_note_id.name or _("none: the license was not invoiced"),
                )
            )
        if problems and len(self) == 1:
            # Nothing was returned: say why (the status CIS reported is kept).
            return notification(
                _("Cancellation refused"), "\n".join(problems), "danger", next_action=RELOAD
            )
        if problems:
            return notification(
                _("Some licenses were not cancelled"), "\n".join(problems), "warning", sticky=True
            )
        return True

    def _esd_redeemed_now(self):
        """What CIS means by LicenseRedeemed, as a status to apply."""
        return License(
            self.esd_license_id, licenses.REDEEMED, activation_date=fields.Datetime.now()
        )

    def _esd_credit(self):
        """A posted credit note for the full amount of the license's invoice line."""
        self.ensure_one()
        line = self.invoice_line_id
        if not line or self.credit_note_line_id:
            return
        invoice = line.move_id
        credit = (
            self.env["account.move"]
            .sudo()
            .create(
                {
                    "move_type": "out_refund",
                    "partner_id": invoice.partner_id.id,
                    "currency_id": invoice.currency_id.id,
                    "journal_id": invoice.journal_id.id,
                    "fiscal_position_id": invoice.fiscal_position_id.id,
                    "reversed_entry_id": invoice.id,
                    "invoice_origin": invoice.name,
                    "ref": _(
                        "Return of %(license)s (%(invoice)s)",
                        license=self.name,
                        invoice=invoice.name,
                    ),
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "product_id": line.product_id.id,
                                "name": line.name,
                                "quantity": line.quantity,
                                "product_uom_id": line.product_uom_id.id,
                                "price_unit": line.price_unit,
                                "discount": line.discount,
                                "tax_ids": [Command.set(line.tax_ids.ids)],
                                "sale_line_ids": [Command.set(line.sale_line_ids.ids)],
                            }
                        )
                    ],
                }
            )
        )
        credit.action_post()
        self.sudo().credit_note_line_id = credit.invoice_line_ids[:1]
        # The order line of a returned license is no longer sold: nothing left to invoice.
        if self.sale_line_id:
            self.sale_line_id.sudo().write({"product_uom_qty": 0, "qty_delivered": 0})

    def _esd_request_cancellation(self, comment, partner):
        """A customer asks to cancel; an ESD user approves or rejects it."""
        self._esd_check_returnable()
        for asset in self:
            if asset.cancel_request_state == "pending":
                raise UserError(_("A cancellation of %s is already pending.", asset.name))
        self.sudo().write(
            {
                "cancel_request_state": "pending",
                "cancel_request_comment": comment or False,
                "cancel_requested_by": partner.id,
                "cancel_requested_on": fields.Datetime.now(),
            }
        )
        for asset in self:
            asset.sudo().message_post(
                body=_(
                    "Cancellation requested by %(partner)s. %(comment)s",
                    partner=partner.name,
                    comment=comment or "",
                ),
                author_id=partner.id,
            )
            asset.sudo().activity_schedule(
                "mail.mail_activity_data_todo",
                summary=_("Cancellation request to review"),
                user_id=(asset.sale_order_id.user_id or self.env.ref("base.user_admin")).id,
            )
        return True

    def _esd_withdraw_cancellation(self):
        pending = self.filtered(lambda a: a.cancel_request_state == "pending")
        if not pending:
            raise UserError(_("There is no pending cancellation request to withdraw."))
        pending.sudo().write({"cancel_request_state": "none", "cancel_request_comment": False})
        pending.sudo().message_post(body=_("Cancellation request withdrawn."))
        pending.sudo()._esd_close_cancellation_activities()
        return True

    def _esd_close_cancellation_activities(self):
        summary = _("Cancellation request to review")
        self.activity_ids.filtered(lambda a: a.summary == summary).action_feedback(
            feedback=_("Done.")
        )
