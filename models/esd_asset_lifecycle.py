import datetime
import logging
import time
import uuid

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from ..microsoft_esd import licenses, provisioning
from ..microsoft_esd.contract import CODE_ALREADY_RETURNED, CODE_LICENSE_REDEEMED, License
from ..microsoft_esd.errors import ConflictError, EsdError, redact
from . import esd_jobs
from .esd_access import check_caller
from .notification import RELOAD, notification

_logger = logging.getLogger(__name__)

# The portal's Update status and Resend activation: at most once a minute per license.
PORTAL_INTERVAL = 60
RETURNS_PER_CALL = 50
# A returns call takes up returns for this long (each a CIS call): past it, with returns still
# due, it ends the cron's run and wakes the cron again at once, as a provisioning call does.
RETURNS_WINDOW_SECONDS = 10.0
# Returns due now: requested or accepted, and not waiting for CIS to answer again.
RETURNS_DUE = (
    "return_state IN ('requested', 'accepted') AND "
    "(next_attempt_at IS NULL OR next_attempt_at <= (now() at time zone 'UTC'))"
)


class EsdAsset(models.Model):
    """After the sale: status at Microsoft, returns and credit notes, cancellation requests.

    A return happens exactly once: Cancel License records its intent (with its own idempotency
    key) and triggers the returns cron, which calls CIS, then makes the credit note, each step
    recorded in ``return_state`` and committed; a lost answer is asked again with the same key
    after a backoff, whatever a crash interrupted is taken up again by the next run.
    """

    _inherit = "esd.asset"

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

    def action_esd_resend_to(self):
        """Resend to...: the license email to a new address of the customer (a wizard)."""
        self.ensure_one()
        check_caller(self)
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Resend to..."),
            "res_model": "esd.resend.to",
            "view_mode": "form",
            "target": "new",
            "context": {"default_asset_id": self.id},
        }

    def action_cancel_license(self):
        """Return the licenses to Microsoft, then credit their invoice line in full."""
        check_caller(self)
        return self.sudo()._esd_cancel()

    def action_approve_cancellation(self):
        check_caller(self)
        return self.sudo()._esd_cancel()

    def action_reject_cancellation(self):
        check_caller(self)
        self._esd_hold()
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
        return self.sudo()._esd_credit_each(
            lambda asset: asset.return_state in ("external", "accepted"),
            self.env._("%s was not returned at Microsoft: there is nothing to credit."),
            lambda asset: asset._esd_credit_return(),
        )

    def action_credit_failed_license(self):
        """Stop licenses that failed for good after their line was invoiced (a paid web order
        is invoiced at payment when sale.automatic_invoice is set), and credit their invoice
        line; the customer is refunded from the credit note, as any credit note."""
        check_caller(self)
        return self.sudo()._esd_credit_each(
            lambda asset: asset.lifecycle_state == "failed" and asset.invoice_line_id,
            self.env._(
                "%s is not a failed license with an invoice: there is nothing to credit. Retry "
                "provisioning, or cancel its order."
            ),
            lambda asset: asset._esd_credit_failed(),
        )

    def _esd_credit_each(self, eligible, refusal, credit):
        """Refuse (``refusal`` % name) unless every license is ``eligible``; then ``credit``
        each one; a notification lists what was not credited and why."""
        for asset in self:
            if not eligible(asset):
                raise UserError(refusal % asset.name)
        self._esd_hold()
        problems = [problem for problem in (credit(asset) for asset in self) if problem]
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

        Its order's row, then the license row are locked first (the lock order of every writer
        of licenses): of two clicks at once, the second is refused (it waits for nothing, and
        the first one's stamp stands once committed)."""
        self._esd_hold(
            self.env._("This license is being %s right now: try again in a minute.", done),
            wait=0,
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
        self._esd_hold()
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
        self._esd_hold()
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
            esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_returns")  # its credit note
        else:
            self._esd_set_returned_externally(reported)
        return verdict

    @api.model
    def _cron_refresh_statuses(self):
        """Bulk refresh: one "changed since" call per instance, not one call per license; each
        instance committed on its own, the progress reported."""
        instances = self.env["esd.instance"].search([("state", "=", "connected")])
        esd_jobs.each_in_savepoint(
            instances,
            self._esd_refresh_statuses_of,
            "its license statuses could not be refreshed",
            commit_each=True,
        )
        esd_jobs.finish(self.env, len(instances), 0)

    @api.model
    def _esd_refresh_statuses_of(self, instance):
        since = instance.license_status_synced_at or fields.Datetime.subtract(
            fields.Datetime.now(), days=365
        )
        started = fields.Datetime.now()
        try:
            changes = list(instance._esd_client().iter_license_changes(since))
        except (EsdError, UserError) as exc:
            _logger.warning("status refresh of ESD instance %s failed: %s", instance.id, exc)
            return
        by_id = {change.license_id: change for change in changes}
        assets = self.search(
            [
                ("instance_id", "=", instance.id),
                ("esd_license_id", "in", list(by_id)),
                ("sync_status", "=", "synchronized"),
            ]
        )
        esd_jobs.each_in_savepoint(
            assets,
            lambda asset: asset._esd_apply_status(by_id[asset.esd_license_id]),
            "its status could not be applied",
        )
        instance.license_status_synced_at = started

    def _esd_resend(self):
        delivered = self.filtered(lambda a: a.sync_status == "synchronized" and a.state == "active")
        if not delivered:
            raise UserError(self.env._("Only active, delivered licenses can be sent again."))
        delivered._esd_hold()
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
        """Record the return of these licenses; the returns cron carries it out, at once."""
        self._esd_hold()
        self._esd_check_returnable()
        requested = self._esd_set_return_requested()
        esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_returns")
        return notification(
            self.env._("Return requested"),
            self.env._(
                "%s: Odoo asks Microsoft now and credits the invoice once Microsoft accepts. "
                "The license shows the outcome in a moment.",
                ", ".join(requested.mapped("name")),
            ),
            next_action=RELOAD,
        )

    def _esd_finish_return(self):
        """The next step of a return: CIS for a requested one, the credit note for an accepted
        one. Returns None when it is done, else a sentence saying what is left and why."""
        self.ensure_one()
        if self.return_state == "requested":
            return self._esd_return()
        if self.return_state == "accepted":
            return self._esd_credit_return()
        return None

    def _esd_return(self):
        """Ask CIS to take the license back (same request id on every try), then credit it.

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
            return self._esd_return_later(exc)
        except UserError as exc:
            return self._esd_set_return_refused(str(exc))
        self._esd_set_returned(returned)
        return self._esd_credit_return()

    def _esd_return_later(self, error):
        """CIS did not answer: ask again after a backoff, with the same request id."""
        if self._esd_return_backoff() == 1:
            self.message_post(
                body=self.env._(
                    "Return requested; Microsoft did not answer (%s). Odoo asks again until it "
                    "does: nothing to do.",
                    error,
                )
            )
        return self.env._(
            "%(license)s: Microsoft did not answer (%(error)s). The return is completed "
            "automatically.",
            license=self.name,
            error=error,
        )

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
            return self._esd_credit_later(problem)
        try:
            with self.env.cr.savepoint():
                credit = self._esd_reverse_invoice_line(line)
        except esd_jobs.CONFLICTS:
            raise
        except Exception as exc:  # the return is kept: the returns cron tries the credit again
            _logger.exception("ESD license %s: its credit note could not be made", self.id)
            problem = self.env._(
                "%(license)s was returned; its credit note could not be made: %(error)s",
                license=self.name,
                error=redact(str(exc)),
            )
            return self._esd_credit_later(problem)
        self._esd_set_credited(credit.display_name)
        return None

    def _esd_credit_failed(self):
        """Stop a failed, invoiced license and reverse its invoice line. Returns None when done,
        else why not."""
        self.ensure_one()
        held = self._esd_microsoft_holds()
        if held:
            return held
        line = self.sudo().invoice_line_id
        if line.move_id.state != "posted" or self.sudo().credit_note_line_id:
            return self.env._(
                "%(license)s: its invoice %(invoice)s is not posted, or already credited.",
                license=self.name,
                invoice=line.move_id.display_name,
            )
        credit = self._esd_reverse_invoice_line(line)
        self._esd_set_stopped()
        self.message_post(
            body=self.env._(
                "Microsoft never delivered this license: stopped and credited (%s). Refund the "
                "customer from the credit note.",
                credit.display_name,
            )
        )
        self._esd_close_activities(
            "microsoft_esd.mail_activity_esd_credit", self.env._("Credited.")
        )
        self._esd_close_activities(
            "microsoft_esd.mail_activity_esd_delivery", self.env._("Credited.")
        )
        return None

    def _esd_microsoft_holds(self):
        """For a license whose order may have reached Microsoft (an answer was lost): CIS is
        asked now whether it holds a license ordered under this license's reference. Returns
        why it cannot be credited, or None (and Odoo then knows Microsoft does not hold it)."""
        self.ensure_one()
        asset = self.sudo()
        if not asset.cis_may_hold:
            return None
        reference = asset._esd_job().external_reference
        since = datetime.datetime.combine(asset.purchase_date, datetime.time.min)
        try:
            changes = asset.instance_id._esd_client().iter_license_changes(
                since - datetime.timedelta(days=1)
            )
            held = [lic for lic in changes if lic.external_reference == reference]
        except (EsdError, UserError) as exc:
            return self.env._(
                "%(license)s: its order may have reached Microsoft, and Microsoft could not be "
                "asked now (%(error)s). Try again later.",
                license=self.name,
                error=exc,
            )
        if held:
            return self.env._(
                "%(license)s: Microsoft holds it (ordered under its reference %(reference)s, "
                "its answer was lost). Press Retry provisioning to record its key: it is not "
                "credited.",
                license=self.name,
                reference=reference,
            )
        asset.cis_may_hold = False
        return None

    def _esd_credit_later(self, problem):
        """The credit note cannot be made now: an activity says why; the returns cron tries
        again after a backoff (up to every 30 minutes). Returns the problem."""
        self._esd_return_backoff()
        self._esd_schedule_activity("microsoft_esd.mail_activity_esd_credit", problem)
        return problem

    def _esd_return_backoff(self):
        """The returns cron takes this license up again after the backoff of its attempts (1,
        2, 4... up to 30 minutes, jittered). Returns the attempts so far."""
        attempts = self.return_attempts + 1
        delay = provisioning.retry_delay(attempts)
        when = fields.Datetime.add(fields.Datetime.now(), seconds=delay)
        self.sudo().write({"return_attempts": attempts, "next_attempt_at": when})
        esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_returns", when)
        return attempts

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
        """Carry out the returns due, one license at a time: claimed after its order's row (the
        lock order of every writer of licenses), its CIS call and credit note under a savepoint
        of its own, committed; report the progress. A concurrent update rolls back quietly the
        license it met, which the next call takes up again.

        A call takes up returns for a window of RETURNS_WINDOW_SECONDS (at least one): each is a
        CIS call, a second or more when CIS is slow or failing. A call that used its window
        with returns still due ends the cron's run and wakes the cron at once
        (``esd_jobs.finish_window``)."""
        done, tried = 0, []
        deadline = time.monotonic() + RETURNS_WINDOW_SECONDS
        window_used = False
        with esd_jobs.expected_conflicts():
            for _index in range(RETURNS_PER_CALL):
                if done and time.monotonic() >= deadline:
                    window_used = True
                    break
                try:
                    asset = self._esd_lock(
                        f"{RETURNS_DUE} AND id != ALL(%s)", 1, fresh=True, params=[tried]
                    )
                    if not asset:
                        break
                    tried.append(asset.id)
                    esd_jobs.each_in_savepoint(
                        asset,
                        lambda asset: asset._esd_finish_return(),
                        "its return could not be finished",
                    )
                    esd_jobs.commit(self.env)
                except esd_jobs.CONFLICTS:
                    if not esd_jobs.rollback(self.env):
                        raise
                    _logger.info(
                        "ESD returns: a license is taken up again after a concurrent update"
                    )
                    esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_returns")
                    break
                done += 1
            remaining = self.with_context(active_test=False).search_count(
                [
                    ("return_state", "in", ("requested", "accepted")),
                    "|",
                    ("next_attempt_at", "=", False),
                    ("next_attempt_at", "<=", fields.Datetime.now()),
                ]
            )
            if remaining and window_used:
                _logger.info(
                    "ESD returns: %s returns still due, the cron runs again at once", remaining
                )
                esd_jobs.finish_window(
                    self.env,
                    done,
                    lambda: esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_returns"),
                )
            else:
                esd_jobs.finish(self.env, done, remaining)

    # ------------------------------------------------------------------ state changes
    # Each goes through _esd_update_state (esd_asset.py): licenses in a state the change may not
    # start from are logged and left.
    def _esd_set_redeemed(self, activation_date):
        redeemed = self._esd_update_state(
            "redeemed",
            {
                "token_status": licenses.REDEEMED,
                "activation_date": activation_date or fields.Datetime.now(),
                "return_state": "none",
                "next_attempt_at": False,
            },
        )
        for asset in redeemed:
            asset.message_post(body=self.env._("Status at Microsoft: Redeemed."))
        return redeemed

    def _esd_set_return_requested(self):
        requested = self.browse()
        for asset in self:
            requested |= asset._esd_update_state(
                "return_requested",
                {
                    "return_state": "requested",
                    "return_request_id": str(uuid.uuid4()),
                    "return_requested_at": fields.Datetime.now(),
                    "return_attempts": 0,
                    "next_attempt_at": False,
                    "cancel_request_state": "none",
                },
            )
        requested._esd_close_activities(
            "microsoft_esd.mail_activity_esd_cancellation", self.env._("Approved.")
        )
        return requested

    def _esd_set_return_refused(self, error):
        """Microsoft refused the return: the license stays active; returns why."""
        redeemed = self.browse()
        if isinstance(error, ConflictError) and error.code == CODE_LICENSE_REDEEMED:
            redeemed = self._esd_set_redeemed(False)
        refused = (self - redeemed)._esd_update_state(
            "return_refused", {"return_state": "none", "next_attempt_at": False}
        )
        message = self.env._(
            "%(license)s: Microsoft refused the return: %(error)s",
            license=", ".join(self.mapped("name")),
            error=error,
        )
        for asset in refused | redeemed:
            asset.message_post(body=message)
        return message

    def _esd_set_returned(self, returned):
        """CIS accepted the return Odoo asked for."""
        accepted = self._esd_update_state(
            "returned",
            {
                "state": "cancelled",
                "token_status": returned.token_status,
                "return_status": returned.return_status,
                "return_state": "accepted",
                "next_attempt_at": False,
            },
        )
        for asset in accepted:
            asset.message_post(body=self.env._("Returned to Microsoft; the credit note follows."))
        return accepted

    def _esd_set_returned_externally(self, reported):
        """Microsoft reports a return Odoo never asked for: no credit without a decision."""
        returned = self._esd_update_state(
            "returned_elsewhere",
            {
                "state": "cancelled",
                "token_status": reported.token_status,
                "return_status": reported.return_status or "successful",
                "return_state": "external",
            },
        )
        note = self.env._(
            "Microsoft reports this license returned, although Odoo never asked. Check with the "
            "customer, then credit it (Reconciliation, or Credit Return on the license)."
        )
        for asset in returned:
            asset.message_post(body=note)
        returned._esd_schedule_activity("microsoft_esd.mail_activity_esd_credit", note)
        return returned

    def _esd_set_credited(self, credit):
        credited = self._esd_update_state(
            "credited", {"return_state": "done", "next_attempt_at": False}
        )
        for asset in credited:
            asset.message_post(body=self.env._("Returned to Microsoft and credited: %s.", credit))
        credited._esd_close_activities(
            "microsoft_esd.mail_activity_esd_credit", self.env._("Credited.")
        )
        return credited
