import logging
import uuid

import psycopg2.errors

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from ..microsoft_esd import licenses
from ..microsoft_esd.contract import CODE_ALREADY_RETURNED, CODE_LICENSE_REDEEMED, License
from ..microsoft_esd.errors import ConflictError, EsdError, redact
from .esd_access import check_caller
from .esd_asset import INTERNAL
from .notification import RELOAD, notification

_logger = logging.getLogger(__name__)

# The portal's Update status and Resend activation: at most once a minute per license.
PORTAL_INTERVAL = 60
# The returns cron leaves alone a return requested less than this long ago (seconds; system
# parameter microsoft_esd.return_grace_seconds): the request that recorded it is still at work.
RETURN_GRACE_SECONDS = 120
RETURNS_PER_CALL = 50


class EsdAsset(models.Model):
    """After the sale: status at Microsoft, returns and credit notes, cancellation requests.

    A return happens exactly once: its intent (with its own idempotency key) is committed
    before CIS is called, then CIS, then the credit note, each step recorded in
    ``return_state``; the returns cron finishes whatever a crash or a lost answer interrupted.
    """

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
    return_state = fields.Selection(
        [
            ("none", "Not returned"),
            ("requested", "Return requested"),
            ("accepted", "Returned, credit note pending"),
            ("done", "Returned and credited"),
            ("external", "Returned at Microsoft, not credited"),
        ],
        "Return",
        default="none",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    return_request_id = fields.Char(readonly=True, copy=False, groups=INTERNAL)
    return_requested_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)
    activation_date = fields.Datetime(readonly=True)
    # The billing side is the staff's: an end customer never reads what its reseller paid.
    invoice_line_id = fields.Many2one(
        "account.move.line",
        compute="_compute_invoice_lines",
        store=True,
        index="btree_not_null",
        groups=INTERNAL,
    )
    credit_note_line_id = fields.Many2one(
        "account.move.line", compute="_compute_invoice_lines", store=True, groups=INTERNAL
    )
    credit_note_id = fields.Many2one(
        related="credit_note_line_id.move_id", string="Credit Note", groups=INTERNAL
    )
    invoice_id = fields.Many2one(
        related="invoice_line_id.move_id", string="Invoice", groups=INTERNAL
    )
    invoice_amount = fields.Monetary(
        related="invoice_line_id.price_total",
        string="Invoice Amount",
        currency_field="currency_id",
        groups=INTERNAL,
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

    @api.depends(
        "sale_line_id.invoice_lines.move_id.state", "sale_line_id.invoice_lines.move_id.move_type"
    )
    def _compute_invoice_lines(self):
        """The license's customer invoice line and credit note line, as sale links them."""
        for asset in self:
            lines = asset.sale_line_id.invoice_lines.filtered(
                lambda line: line.move_id.state != "cancel"
            ).sorted("id")
            asset.invoice_line_id = lines.filtered(
                lambda line: line.move_id.move_type == "out_invoice"
            )[-1:]
            asset.credit_note_line_id = lines.filtered(
                lambda line: line.move_id.move_type == "out_refund"
            )[-1:]

    # ------------------------------------------------------------------ backend actions
    # Each checks its caller: a button's groups protect nothing against JSON-RPC. After the
    # check the work runs as sudo (the order and its invoices may be another salesperson's);
    # the messages are still the user's.
    def action_update_license_status(self):
        """Ask CIS for the status of these licenses and apply the allowed transitions."""
        check_caller(self)
        return self.sudo()._esd_update_status()

    def action_resend_activation(self):
        check_caller(self)
        delivered = self.sudo()._esd_resend()
        return notification(
            self.env._("Activation email sent"),
            self.env._("%s license email(s) queued.", len(delivered)),
        )

    def action_cancel_license(self):
        """Return the licenses to Microsoft, then credit their invoice line in full."""
        check_caller(self)
        return self.sudo()._esd_cancel()

    def action_approve_cancellation(self):
        check_caller(self)
        return self.sudo()._esd_cancel()

    def action_reject_cancellation(self):
        check_caller(self)
        pending = self.sudo().filtered(lambda a: a.cancel_request_state == "pending")
        pending.write({"cancel_request_state": "rejected"})
        pending.message_post(body=self.env._("Cancellation request rejected."))
        pending._esd_close_activities(
            "microsoft_esd.mail_activity_esd_cancellation", self.env._("Rejected.")
        )
        return True

    def action_credit_return(self):
        """Credit a license Microsoft reports returned (a reconciliation finding)."""
        check_caller(self)
        problems = []
        for asset in self.sudo():
            if asset.return_state not in ("external", "accepted"):
                raise UserError(
                    self.env._(
                        "%s was not returned at Microsoft: there is nothing to credit.", asset.name
                    )
                )
            problem = asset._esd_credit_return()
            if problem:
                problems.append(problem)
        if problems:
            return notification(
                self.env._("Not credited"), "\n".join(problems), "warning", sticky=True
            )
        return True

    # ------------------------------------------------------------------ portal operations
    # Private: the portal controller calls them after its own ownership check.
    def _esd_portal_update_status(self):
        self.ensure_one()
        self._esd_throttle("portal_status_checked_at", self.env._("updated"))
        with self.env.cr.savepoint():  # a CIS error undoes the update, never the stamp
            return self._esd_update_status()

    def _esd_portal_resend(self):
        self.ensure_one()
        self._esd_throttle("portal_email_resent_at", self.env._("sent again"))
        with self.env.cr.savepoint():
            return self._esd_resend()

    def _esd_throttle(self, field, done):
        """Refuse a portal operation done less than a minute ago on this license; else stamp it.

        The license row is locked first: of two clicks at once, the second is refused (it waits
        for nothing, and the first one's stamp stands once committed)."""
        if not self._esd_lock("id = %s", 1, commit=False, params=[self.id]):
            raise UserError(
                self.env._("This license is being %s right now: try again in a minute.", done)
            )
        now = fields.Datetime.now()
        wait = licenses.wait_seconds(self.sudo()[field], now, PORTAL_INTERVAL)
        if wait:
            raise UserError(
                self.env._(
                    "This license was %(done)s less than a minute ago: try again in %(wait)s "
                    "seconds.",
                    done=done,
                    wait=wait,
                )
            )
        self.sudo().write({field: now})

    def _esd_request_cancellation(self, comment, partner):
        """A customer asks to cancel; an ESD user approves or rejects it."""
        self._esd_check_returnable()
        for asset in self:
            if asset.cancel_request_state == "pending":
                raise UserError(self.env._("A cancellation of %s is already pending.", asset.name))
        self.sudo().write(
            {
                "cancel_request_state": "pending",
                "cancel_request_comment": comment or False,
                "cancel_requested_by": partner.id,
                "cancel_requested_on": fields.Datetime.now(),
            }
        )
        for asset in self.sudo():
            asset.message_post(
                body=self.env._(
                    "Cancellation requested by %(partner)s. %(comment)s",
                    partner=partner.name,
                    comment=comment or "",
                ),
                author_id=partner.id,
            )
            asset._esd_schedule_activity(
                "microsoft_esd.mail_activity_esd_cancellation",
                comment or self.env._("The customer gave no reason."),
            )
        return True

    def _esd_withdraw_cancellation(self):
        pending = self.sudo().filtered(lambda a: a.cancel_request_state == "pending")
        if not pending:
            raise UserError(self.env._("There is no pending cancellation request to withdraw."))
        pending.write({"cancel_request_state": "none", "cancel_request_comment": False})
        pending.message_post(body=self.env._("Cancellation request withdrawn."))
        pending._esd_close_activities(
            "microsoft_esd.mail_activity_esd_cancellation", self.env._("Withdrawn by the customer.")
        )
        return True

    # ------------------------------------------------------------------ status
    def _esd_update_status(self):
        assets = self.filtered(lambda a: a.sync_status == "synchronized")
        if not assets:
            raise UserError(self.env._("Only delivered licenses have a status at Microsoft."))
        for instance, group in assets.grouped("instance_id").items():
            client = instance._esd_client()
            for asset in group:
                try:
                    reported = client.get_license(asset.esd_license_id)
                except EsdError as exc:
                    raise UserError(
                        self.env._("%(license)s: %(error)s", license=asset.name, error=exc)
                    ) from None
                asset._esd_apply_status(reported)
        return True

    def _esd_apply_status(self, reported):
        """Apply what CIS reports if the transition is allowed; log it otherwise."""
        self.ensure_one()
        verdict = licenses.transition(self.token_status, reported.token_status)
        if verdict == "same":
            return verdict
        labels = dict(self._fields["token_status"].selection)
        if verdict == "refuse":
            self.message_post(
                body=self.env._(
                    "CIS reports %(reported)s but the license is %(current)s here: not applied "
                    "(not an allowed transition). See Reconciliation.",
                    reported=labels.get(reported.token_status),
                    current=labels.get(self.token_status),
                )
            )
            return verdict
        if reported.token_status == licenses.REDEEMED:
            self._esd_set_redeemed(reported.activation_date)
        elif self.return_state == "requested":
            self._esd_set_returned(reported)  # our own return, whose answer was lost
        else:
            self._esd_set_returned_externally(reported)
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
                try:
                    with self.env.cr.savepoint():
                        asset._esd_apply_status(by_id[asset.esd_license_id])
                except Exception:  # one license never blocks the refresh of the others
                    _logger.exception("ESD license %s: its status could not be applied", asset.id)
            instance.license_status_synced_at = started

    def _esd_resend(self):
        delivered = self.filtered(lambda a: a.sync_status == "synchronized" and a.state == "active")
        if not delivered:
            raise UserError(self.env._("Only active, delivered licenses can be sent again."))
        delivered._esd_send_welcome()
        return delivered

    # ------------------------------------------------------------------ returns
    def _esd_return_refusal(self):
        self.ensure_one()
        if self.state != "active" or self.sync_status != "synchronized":
            return self.env._("it is not an active, delivered license")
        if self.return_state == "requested":
            return self.env._("its return is already under way")
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
                    self.env._(
                        "%(license)s cannot be cancelled: %(reason)s.",
                        license=asset.name,
                        reason=refusal,
                    )
                )

    def _esd_cancel(self):
        """Return the licenses to Microsoft exactly once, then credit them."""
        self._esd_check_returnable()
        for asset in self:
            asset._esd_set_return_requested()
        # The intent is kept whatever happens next: the returns cron finishes it.
        self._esd_commit()
        problems = [problem for problem in (asset._esd_return() for asset in self) if problem]
        if problems and len(self) == 1:
            return notification(
                self.env._("Cancellation not completed"), problems[0], "danger", next_action=RELOAD
            )
        if problems:
            return notification(
                self.env._("Some licenses were not cancelled"),
                "\n".join(problems),
                "warning",
                sticky=True,
            )
        return True

    def _esd_return(self):
        """Carry out a requested return: CIS (same request id on every try), then the credit.

        Returns None when done, else a sentence saying what is left and why.
        """
        self.ensure_one()
        try:
            returned = self.instance_id._esd_client().return_license(
                self.esd_license_id, request_id=self.return_request_id
            )
        except ConflictError as exc:
            if exc.code != CODE_ALREADY_RETURNED:
                return self._esd_set_return_refused(exc)
            returned = License(
                self.esd_license_id, licenses.RETURN_ACCEPTED, return_status="successful"
            )
        except EsdError as exc:
            if not exc.transient:
                return self._esd_set_return_refused(exc)
            self.message_post(
                body=self.env._(
                    "Return requested; Microsoft did not answer (%s). It is completed "
                    "automatically: nothing to do.",
                    exc,
                )
            )
            self._esd_trigger_returns()
            return self.env._(
                "%(license)s: Microsoft did not answer (%(error)s). The return is completed "
                "automatically.",
                license=self.name,
                error=exc,
            )
        except UserError as exc:
            return self._esd_set_return_refused(exc.args[0])
        self._esd_set_returned(returned)
        self._esd_commit()
        return self._esd_credit_return()

    def _esd_credit_return(self):
        """The credit note of a license Microsoft took back: once, through Odoo's reversal.

        Only the license's own invoice line is reversed, with its account, taxes, analytic
        distribution, price and discount, and linked to its order line. No credit note for an
        invoice that is cancelled (nothing was charged) or already credited; none for a draft
        invoice either: the return waits, with an activity, until the invoice is posted.
        Returns None when done, else why it is not.
        """
        self.ensure_one()
        line = self.sudo().invoice_line_id
        invoice = line.move_id
        if not line or self.sale_line_id.qty_invoiced <= 0:
            reason = (
                self.env._("the license was not invoiced")
                if not line
                else self.env._("already credited")
            )
            self._esd_set_credited(reason)
            return None
        if invoice.state != "posted":
            problem = self.env._(
                "%(license)s: its invoice %(invoice)s is not posted. Post it (or remove the "
                "license's line from it), then the credit note follows.",
                license=self.name,
                invoice=invoice.display_name,
            )
            self._esd_schedule_activity("microsoft_esd.mail_activity_esd_credit", problem)
            return problem
        try:
            with self.env.cr.savepoint():
                credit = self._esd_reverse_invoice_line(line)
        except psycopg2.errors.TransactionRollbackError:
            raise
        except Exception as exc:  # the return is kept: the returns cron tries the credit again
            _logger.exception("ESD license %s: its credit note could not be made", self.id)
            problem = self.env._(
                "%(license)s was returned; its credit note could not be made: %(error)s",
                license=self.name,
                error=redact(str(exc)),
            )
            self._esd_schedule_activity("microsoft_esd.mail_activity_esd_credit", problem)
            return problem
        self._esd_set_credited(credit.display_name)
        return None

    def _esd_reverse_invoice_line(self, line):
        """A posted credit note reversing ``line`` alone (account's own reversal)."""
        invoice = line.move_id
        today = fields.Date.context_today(self)
        line_vals = line.with_context(include_business_fields=True).copy_data()[0]
        credit = invoice.sudo()._reverse_moves(
            [
                {
                    "ref": self.env._(
                        "Return of %(license)s (%(invoice)s)",
                        license=self.name,
                        invoice=invoice.name,
                    ),
                    "date": today,
                    "invoice_date": today,
                    "journal_id": invoice.journal_id.id,
                    "invoice_user_id": invoice.invoice_user_id.id,
                    "line_ids": [Command.create(line_vals)],
                }
            ]
        )
        credit.action_post()
        return credit

    @api.model
    def _cron_finish_returns(self):
        """Finish the returns a crash or a lost answer interrupted; report the progress."""
        threshold = fields.Datetime.subtract(
            fields.Datetime.now(), seconds=self._esd_return_grace()
        )
        assets = self._esd_lock(
            "return_state IN ('requested', 'accepted') AND return_requested_at <= %s",
            RETURNS_PER_CALL,
            commit=self._esd_can_commit(),
            order="return_requested_at, id",
            params=[threshold],
        )
        for asset in assets:
            try:
                with self.env.cr.savepoint():
                    if asset.return_state == "requested":
                        asset._esd_return()
                    else:
                        asset._esd_credit_return()
            except Exception:  # one license never blocks the others
                _logger.exception("ESD license %s: its return could not be finished", asset.id)
            self._esd_commit()
        remaining = self.search_count([("return_state", "in", ("requested", "accepted"))])
        self.env["ir.cron"]._notify_progress(done=len(assets), remaining=remaining)
        self._esd_commit()

    @api.model
    def _esd_return_grace(self):
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("microsoft_esd.return_grace_seconds", RETURN_GRACE_SECONDS)
        )
        try:
            return max(0, int(value))
        except ValueError:
            return RETURN_GRACE_SECONDS

    @api.model
    def _esd_trigger_returns(self):
        cron = self.env.ref("microsoft_esd.ir_cron_esd_returns")
        cron._trigger(fields.Datetime.add(fields.Datetime.now(), seconds=self._esd_return_grace()))

    # ------------------------------------------------------------------ state changes
    def _esd_set_redeemed(self, activation_date):
        self.sudo().write(
            {
                "token_status": licenses.REDEEMED,
                "activation_date": activation_date or fields.Datetime.now(),
                "return_state": "none",
            }
        )
        self.message_post(body=self.env._("Status at Microsoft: Redeemed."))

    def _esd_set_return_requested(self):
        self.sudo().write(
            {
                "return_state": "requested",
                "return_request_id": str(uuid.uuid4()),
                "return_requested_at": fields.Datetime.now(),
                "cancel_request_state": "none",
            }
        )
        self._esd_close_activities(
            "microsoft_esd.mail_activity_esd_cancellation", self.env._("Approved.")
        )

    def _esd_set_return_refused(self, error):
        """Microsoft refused the return: the license stays active; returns why."""
        if isinstance(error, ConflictError) and error.code == CODE_LICENSE_REDEEMED:
            self._esd_set_redeemed(False)
        self.sudo().write({"return_state": "none"})
        message = self.env._(
            "%(license)s: Microsoft refused the return: %(error)s", license=self.name, error=error
        )
        self.message_post(body=message)
        return message

    def _esd_set_returned(self, returned):
        self.sudo().write(
            {
                "state": "cancelled",
                "token_status": returned.token_status,
                "return_status": returned.return_status,
                "return_state": "accepted",
            }
        )
        self.message_post(body=self.env._("Returned to Microsoft; the credit note follows."))

    def _esd_set_returned_externally(self, reported):
        """Microsoft reports a return Odoo never asked for: no credit without a decision."""
        self.sudo().write(
            {
                "state": "cancelled",
                "token_status": reported.token_status,
                "return_status": reported.return_status or "successful",
                "return_state": "external",
            }
        )
        note = self.env._(
            "Microsoft reports this license returned, although Odoo never asked. Check with the "
            "customer, then credit it (Reconciliation, or Credit Return on the license)."
        )
        self.message_post(body=note)
        self._esd_schedule_activity("microsoft_esd.mail_activity_esd_credit", note)

    def _esd_set_credited(self, credit):
        self.sudo().write({"return_state": "done"})
        self.message_post(body=self.env._("Returned to Microsoft and credited: %s.", credit))
        self._esd_close_activities(
            "microsoft_esd.mail_activity_esd_credit", self.env._("Credited.")
        )
