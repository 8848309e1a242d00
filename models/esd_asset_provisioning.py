import contextvars
import datetime
import logging
import time

import psycopg2.errors
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools.mail import email_split_and_format

from ..microsoft_esd import licenses, lifecycle, provisioning
from ..microsoft_esd.errors import redact
from . import esd_jobs
from .esd_access import check_caller
from .esd_provisioning_run import ProvisioningRun
from .mail_message import sanitize_once

_logger = logging.getLogger(__name__)

# The license emails being queued in this thread, {license id: {"email_to", "markers",
# "key_block"}}: set by _esd_send_welcome around Odoo's rendering only (a request's context
# cannot set it). The template's rendering appends the key block (models/mail_template.py),
# mail.mail addresses each new email to the recorded addresses and records its grant
# (models/mail_mail.py); the key goes in as the email leaves, in place of the random markers.
WELCOME_QUEUE = contextvars.ContextVar("esd_welcome_queue", default=None)
# The template placeholders an ESD manager (not a template editor) may use. The key is none of
# them: the license email job appends it by code.
MAIL_EXPRESSIONS = (
    "object.name",
    "object.customer_id.name",
    "object.customer_id.lang",
    "object.product_id.name",
    "object.sale_order_id.name",
    "object.company_id.name",
    "object.esd_mail_key_html",
    "object.esd_mail_from",
)

# The provisioning crons share the work (claims with SKIP LOCKED): each is triggered by xmlid.
PROVISION_CRONS = tuple(
    f"microsoft_esd.ir_cron_esd_provision{suffix}" for suffix in ("", "_2", "_3", "_4")
)
WELCOME_BATCH = 50
# A license email that could not leave is queued again after these many minutes (then the last,
# again and again), and at once when an outgoing mail server is added or changed.
MAIL_RETRY_MINUTES = (5, 15, 60, 240, 720)
# A user's change of a license waits this long for a job holding it (or its order), then is
# refused with "try again in a minute".
HOLD_WAIT_SECONDS = 10
# A welcome run that found every pending license locked by others waits this long for the
# oldest one, then (still locked) runs again this soon.
WELCOME_HOLDER_WAIT_SECONDS = 5
WELCOME_LOCKED_RETRY_SECONDS = 5


class EsdAsset(models.Model):
    """Provisioning: order each license from CIS, record it, email it, invoice its order.

    The job is an ``ir.cron`` triggered on confirmation. It claims licenses with ``SELECT ...
    FOR UPDATE SKIP LOCKED`` (several workers share the work), synchronizes the CIS accounts they
    need, orders them in parallel (each with its own idempotency key), records each result under
    its own savepoint and commits per batch; then it invoices the orders with nothing pending.
    """

    _inherit = "esd.asset"

    @api.depends("token_tail", "name")
    @api.depends_context("lang")
    def _compute_esd_mail_key_html(self):
        """The masked key block: what a template that still shows it (before 18.0.1.7.0) shows.
        The license email's own key block is appended by its job (_esd_mail_key_block)."""
        for asset in self:
            asset.esd_mail_key_html = asset._esd_mail_key_block(
                licenses.mask(asset.token_tail) or "", None
            )

    def _esd_mail_key_block(self, key, link):
        """The key, reference and activation button of a license email, in the customer's
        language: ``key`` and ``link`` are the job's markers (or the masked key, no link)."""
        self.ensure_one()
        env = self.with_context(lang=self.customer_id.lang or self.env.lang).env
        button = (
            Markup(
                '<p style="margin: 16px 0;"><a href="%s" style="background-color: #875A7B; '
                "padding: 8px 16px; color: #fff; border-radius: 5px; "
                'text-decoration: none;">%s</a></p>'
            )
            % (link, env._("Activate your license"))
            if link
            else Markup("<p>%s</p>") % env._("The activation link is in the email.")
        )
        return (
            Markup(
                '<table style="border-collapse: collapse; margin: 16px 0;">'
                '<tr><td style="padding: 4px 12px 4px 0;">%s</td>'
                '<td style="padding: 4px 0; font-family: monospace; font-size: 16px;">'
                "<strong>%s</strong></td></tr>"
                '<tr><td style="padding: 4px 12px 4px 0;">%s</td>'
                '<td style="padding: 4px 0;">%s</td></tr></table>'
            )
            % (env._("License key"), key, env._("Reference"), self.name or "")
            + button
        )

    @api.depends("sale_order_id.user_id", "company_id")
    def _compute_esd_mail_from(self):
        for asset in self:
            asset.esd_mail_from = (
                asset.sale_order_id.user_id.email_formatted
                or asset.company_id.email_formatted
                or self.env.user.email_formatted
            )

    @api.model
    def mail_allowed_qweb_expressions(self):
        """The placeholders ESD managers, who are not template editors, may use."""
        return tuple(super().mail_allowed_qweb_expressions()) + MAIL_EXPRESSIONS

    # ------------------------------------------------------------------ actions
    def action_retry_provisioning(self):
        check_caller(self)
        self._esd_hold()
        failed = self.sudo().filtered(lambda a: a.sync_status == "failed" and a.state == "active")
        if not failed:
            raise UserError(
                self.env._(
                    "Only active licenses whose provisioning failed can be retried (a license "
                    "of a cancelled order is never ordered)."
                )
            )
        # An account CIS refused is tried again too: its partner was fixed, or CIS changed.
        failed._esd_accounts().filtered(lambda a: a.sync_status == "failed")._esd_new_request()
        failed._esd_set_pending()
        self._esd_trigger_provisioning()
        return True

    # ------------------------------------------------------------------ state changes
    # Each goes through _esd_update_state (esd_asset.py): licenses in a state the change may not
    # start from are logged and left.
    def _esd_set_pending(self):
        """Retry provisioning: failed licenses are ordered again by the job."""
        pending = self._esd_update_state(
            "pending",
            {
                "sync_status": "unsynchronised",
                "sync_error": False,
                "sync_attempts": 0,
                "next_attempt_at": False,
                "first_transient_error_at": False,
            },
        )
        pending._esd_close_activities(
            "microsoft_esd.mail_activity_esd_delivery", self.env._("Retried.")
        )
        return pending

    def _esd_set_delivered(self, outcome):
        """CIS delivered the license of ``self`` (one license, one outcome)."""
        self.ensure_one()
        lic = outcome.license
        # The welcome email posted next records the delivery in the chatter; tracking these
        # fields as well would double the messages (and the cost) of every license.
        delivered = self.with_context(tracking_disable=True)._esd_update_state(
            "delivered",
            {
                "sync_status": "synchronized",
                "sync_error": False,
                "next_attempt_at": False,
                "first_transient_error_at": False,
                "cis_may_hold": False,
                "esd_order_id": outcome.order.order_id,
                "esd_license_id": lic.license_id,
                "token_status": lic.token_status,
                "return_status": lic.return_status,
                "activation_date": lic.activation_date,
                "welcome_pending": True,
            },
        )
        if delivered:
            self._esd_store_secrets(lic.token, lic.activation_link)
        return delivered

    def _esd_stoppable(self):
        """Whether this license can still be stopped: never sent to Microsoft, or refused (not
        one whose order may have reached Microsoft with its answer lost)."""
        self.ensure_one()
        asset = self.sudo()
        return (
            not asset.esd_license_id
            and not asset.cis_may_hold
            and lifecycle.allowed("stopped", self.lifecycle_state)
        )

    def _esd_set_stopped(self):
        """Its order was cancelled before Microsoft delivered it: it is never ordered."""
        stopped = self._esd_update_state(
            "stopped", {"state": "cancelled", "next_attempt_at": False}
        )
        stopped._message_log_batch(
            dict.fromkeys(
                stopped.ids,
                self.env._("Its order was cancelled: it is not ordered from Microsoft."),
            )
        )
        stopped._esd_close_activities(
            "microsoft_esd.mail_activity_esd_delivery", self.env._("Order cancelled.")
        )
        return stopped

    def _esd_set_retry(self, message):
        """Try again later, after the backoff of each license's attempts (1, 2, 4... up to 30
        minutes, jittered)."""
        now = fields.Datetime.now()
        waiting = self.browse()
        for asset in self:
            attempts = asset.sync_attempts + 1
            delay = provisioning.retry_delay(attempts)
            when = fields.Datetime.add(now, seconds=delay)
            waiting |= asset._esd_update_state(
                "waiting",
                {
                    "sync_attempts": attempts,
                    "sync_error": message,
                    "next_attempt_at": when,
                    "first_transient_error_at": asset.first_transient_error_at or now,
                },
            )
            self._esd_trigger_provisioning(when)
            _logger.info("ESD license %s: not ordered now, again in %ss", asset.id, delay)
        return waiting

    def _esd_set_failed(self, message):
        failed = self.browse()
        for asset in self:
            failed |= asset._esd_update_state(
                "failed",
                {
                    "sync_status": "failed",
                    "sync_error": message,
                    "sync_attempts": asset.sync_attempts + 1,
                    "next_attempt_at": False,
                },
            )
        for asset in failed:
            asset.message_post(body=self.env._("Provisioning failed: %s", message))
        failed._esd_schedule_activity(
            "microsoft_esd.mail_activity_esd_delivery",
            self.env._("%(error)s Fix the cause, then press Retry provisioning.", error=message),
        )
        failed._esd_plan_credit_of_paid_failures()
        return failed

    def _esd_fail(self, message, transient, ordered=False):
        """A transient error is retried (capped, jittered backoff) for the retry window, 24
        hours by default, so a CIS outage heals by itself; anything else fails at once.

        ``ordered``: the error answered the order itself. Microsoft may hold the license after
        a transient one (the order may have gone through, its answer lost); a refusal of the
        same request means it does not."""
        if ordered:
            self.sudo().write({"cis_may_hold": transient})
        window = self._esd_retry_window_hours()
        now = fields.Datetime.now()
        for asset in self:
            first = asset.first_transient_error_at
            if transient and provisioning.keeps_retrying(first, now, window):
                asset._esd_set_retry(message)
            else:
                asset._esd_set_failed(message)

    def _esd_plan_credit_of_paid_failures(self):
        """A failed license whose line was already invoiced (a paid web order is invoiced at
        payment when sale.automatic_invoice is set): its salesperson is asked to retry it or to
        credit it, with the way to do either."""
        for asset in self.filtered(lambda a: a.sudo().invoice_line_id.move_id.state == "posted"):
            asset._esd_schedule_activity(
                "microsoft_esd.mail_activity_esd_credit",
                self.env._(
                    "%(license)s was invoiced (%(invoice)s) but Microsoft did not deliver it. "
                    "Fix the cause and press Retry provisioning, or press Credit Failed License "
                    "to stop it and credit its invoice line, then refund the customer from the "
                    "credit note.",
                    license=asset.name,
                    invoice=asset.sudo().invoice_id.display_name,
                ),
            )

    @api.model
    def _esd_retry_window_hours(self):
        """System parameter microsoft_esd.retry_window_hours (default 24)."""
        return self._esd_number_param(
            "microsoft_esd.retry_window_hours", provisioning.DEFAULT_RETRY_WINDOW_HOURS, float, 0.0
        )

    # ------------------------------------------------------------------ activities
    def _esd_schedule_activity(self, xmlid, note, user=None):
        """Plan one activity of this type for the salesperson, unless one is already open."""
        activity_type = self.env.ref(xmlid)
        for record in self.sudo():
            if record.activity_ids.filtered(lambda a, t=activity_type: a.activity_type_id == t):
                continue
            record.activity_schedule(
                xmlid, note=note, user_id=(user or record._esd_responsible()).id
            )

    def _esd_close_activities(self, xmlid, feedback):
        self.sudo().activity_feedback([xmlid], feedback=feedback)

    def _esd_responsible(self):
        return self.sale_order_id.user_id or self.env.ref("base.user_admin")

    # ------------------------------------------------------------------ the job
    @api.model
    def _esd_trigger_provisioning(self, at=None):
        """Wake every provisioning cron (they share the work): now, or at ``at``."""
        for xmlid in PROVISION_CRONS:
            cron = self.env.ref(xmlid, raise_if_not_found=False)
            if cron and cron.sudo().active:
                cron.sudo()._trigger(at)

    @api.model
    def _esd_parallelism(self):
        return self._esd_number_param(
            "microsoft_esd.parallelism", provisioning.DEFAULT_PARALLELISM, int, 1
        )

    @api.model
    def _esd_number_param(self, key, default, convert, minimum):
        """System parameter ``key`` as a number of at least ``minimum``; ``default`` when it is
        unset or not a number."""
        value = self.env["ir.config_parameter"].sudo().get_param(key, default)
        try:
            return max(minimum, convert(value))
        except ValueError:
            return default

    @api.model
    def _esd_lock(
        self, where, limit, fresh=False, order="id", params=(), group_order="min(id)", cover=None
    ):
        """Lock up to ``limit`` licenses matching ``where`` (SQL on ``esd_asset``), the row of
        each one's order first: the lock order of every writer of licenses (the order's row,
        then its licenses), so that one order's licenses are worked on by one transaction at a
        time and no two writers wait on each other crosswise. Orders and licenses another
        transaction holds are skipped; ``group_order`` (an aggregate over the licenses of an
        order) says which orders come first, ``cover`` how many licenses the orders locked
        must hold at least (``limit`` by default).

        Under REPEATABLE READ, a row another transaction changed and committed after this
        transaction's snapshot raises a serialization failure instead of being skipped. A cron
        claims with ``fresh`` (its transaction holds nothing uncommitted): it starts a fresh
        transaction and claims again; anyone else gets the failure (an expected conflict: not
        logged as an error).
        """
        self.env.flush_all()
        for _attempt in range(5):
            try:
                with esd_jobs.expected_conflicts(), self.env.cr.savepoint(flush=False):
                    return self.browse(
                        esd_jobs.lock_orders_then_licenses(
                            self.env.cr, where, limit, order, list(params), group_order, cover
                        )
                    )
            except psycopg2.errors.SerializationFailure:
                if not (fresh and esd_jobs.rollback(self.env)):
                    raise
        return self.browse()

    def _esd_hold(self, busy_message=None, wait=HOLD_WAIT_SECONDS):
        """Lock these licenses for a change a user asked for, their orders' rows first (the
        lock order of every writer of licenses), waiting up to ``wait`` seconds for a job that
        holds one of them (a provisioning batch holds its order through its CIS calls); then,
        or at once with ``wait`` 0, refused with ``busy_message`` (or a general one). A license
        a job changed meanwhile is an expected conflict: the request starts over (Odoo retries
        it), with no error logged."""
        if not self:
            return
        self.env.flush_all()
        cr = self.env.cr
        with esd_jobs.expected_conflicts():
            try:
                with cr.savepoint(flush=False), esd_jobs.lock_wait(cr, wait):
                    held = esd_jobs.lock_orders_then_licenses(
                        cr, "id = ANY(%s)", len(self), params=[self.ids], wait=bool(wait)
                    )
            except psycopg2.errors.LockNotAvailable:
                held = []
        if len(held) < len(self):
            raise UserError(
                busy_message
                or self.env._(
                    "Odoo is working on %s right now (ordering, invoicing or emailing it): try "
                    "again in a minute.",
                    ", ".join(self.browse(set(self.ids) - set(held)).sudo().mapped("name")),
                )
            )

    @api.model
    def _esd_claim(self, limit, fresh=False, cover=None):
        """Lock up to ``limit`` licenses due for provisioning, the never-tried ones first, from
        as many orders as ``cover`` licenses need."""
        return self._esd_lock(
            "sync_status = 'unsynchronised' AND active AND state = 'active' AND "
            "(next_attempt_at IS NULL OR next_attempt_at <= (now() at time zone 'UTC'))",
            limit,
            fresh,
            order="next_attempt_at NULLS FIRST, id",
            group_order="bool_and(next_attempt_at IS NOT NULL), min(id)",
            cover=cover,
        )

    @api.model
    def _esd_due_domain(self):
        return [
            ("sync_status", "=", "unsynchronised"),
            ("state", "=", "active"),
            "|",
            ("next_attempt_at", "=", False),
            ("next_attempt_at", "<=", fields.Datetime.now()),
        ]

    @api.model
    def _esd_batch_size(self):
        """Licenses claimed at a time by one provisioning batch (system parameter
        microsoft_esd.batch_size; default four waves of the parallelism)."""
        return self._esd_number_param(
            "microsoft_esd.batch_size", self._esd_parallelism() * 4, int, 1
        )

    @api.model
    def _cron_provision(self):
        """Provisioning, as Odoo's cron runner calls it: batches for a few seconds, each
        claimed, ordered, recorded and committed in a transaction of its own, the next one
        ordered while the previous one is recorded and committed (esd_provisioning_run.py);
        then the orders whose licenses are all delivered are invoiced and the progress is
        reported. Returns how many licenses it processed.

        A concurrent update is an expected conflict: the work it rolled back is taken up again
        (a batch from the answers CIS gave), with no error logged.
        """
        with esd_jobs.expected_conflicts():
            run = ProvisioningRun(self.env, defer_invoicing=True)
            done = run.run()
            remaining = self.search_count(self._esd_due_domain())
            if remaining and run.window_used():
                # The orders it left to invoice are invoiced while the next run orders.
                _logger.info(
                    "ESD provisioning: %s licenses still due, the cron runs again at once",
                    remaining,
                )
                esd_jobs.finish_window(self.env, done, self._esd_trigger_provisioning)
                return done
            try:
                # Whatever the batches left (an order another worker was invoicing, say), each
                # order in a transaction of its own.
                self.env["sale.order"]._esd_invoice_ready(commit_each=True)
                esd_jobs.commit(self.env)
            except esd_jobs.CONFLICTS:
                if not esd_jobs.rollback(self.env):
                    raise
                _logger.info("ESD provisioning: invoicing left to the next call after a conflict")
                self._esd_trigger_provisioning(
                    fields.Datetime.now() + datetime.timedelta(seconds=WELCOME_LOCKED_RETRY_SECONDS)
                )
            esd_jobs.finish(self.env, done, remaining)
        return done

    @api.model
    def _esd_provision_batch(self, fresh=False):
        """Claim one batch of due licenses and provision it (committed with ``fresh``);
        returns how many were processed."""
        with esd_jobs.expected_conflicts():
            run = ProvisioningRun(self.env, commit=fresh, pipelined=False, max_batches=1)
            done = run.run()
        if done:
            # The emails go later, in their cron: it writes the same licenses, so it must not
            # run while the invoice links them.
            esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_welcome")
        return done

    @api.model
    def _esd_provision_pending(self):
        """Provision every due license, batch after batch, then invoice (for Odoo shells and
        tests; the crons commit each batch). Returns how many."""
        done = 0
        while batch := self._esd_provision_batch():
            done += batch
        self.env["sale.order"]._esd_invoice_ready()
        return done

    def _esd_provision(self):
        """Order the licenses of ``self`` (claimed by this transaction) and record the results."""
        ready, _synced = self._esd_before_ordering()
        ProvisioningRun(self.env, commit=False, pipelined=False).provision(ready)
        if ready:
            esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_welcome")

    def _esd_before_ordering(self):
        """What comes before ordering these licenses (claimed by this transaction): a license
        whose key could not be stored safely fails, one of an order cancelled since is stopped,
        the CIS accounts they need are synchronized. Returns (the licenses ready to order,
        whether an account was synchronized or tried)."""
        try:
            self._esd_vault()  # a key that cannot be stored safely is not ordered
        except UserError as exc:
            self._esd_set_failed(str(exc))
            return self.browse(), False
        # Under the claim's row locks (it claims active licenses only): an order cancelled since
        # is not ordered (its cancellation writes these rows, so it either committed before the
        # claim or waits for this batch).
        cancelled = self.filtered(lambda a: a.sale_order_id.state == "cancel")
        cancelled._esd_set_stopped()
        rest = self - cancelled
        synced = any(a.sync_status == "not_synced" for a in rest._esd_accounts())
        return rest._esd_sync_accounts(), synced

    def _esd_orders_by_client(self):
        """[(client, jobs)] of these licenses, per ESD instance; the licenses of an instance
        without a working client fail."""
        orders = []
        for instance, assets in self.grouped("instance_id").items():
            try:
                client = instance._esd_client()
            except UserError as exc:
                assets._esd_set_failed(str(exc))
                continue
            orders.append((client, [asset._esd_job() for asset in assets]))
        return orders

    def _esd_prefetch_for_record(self):
        """Read in one query each what recording these licenses reads license by license."""
        # A recomputed invoice status equal to what is cached is not written again, so
        # workers delivering licenses of the same order do not all rewrite its row.
        self.sale_order_id.mapped("invoice_status")
        # Each license is written alone, and the fields depending on it (its line's delivered
        # quantity) would read its order line alone.
        self.sale_line_id.mapped("order_id")

    def _esd_record_each(self, outcomes):
        """Record each outcome under its own savepoint: one that cannot be recorded fails its
        license alone."""
        for outcome in outcomes:
            asset = self.browse(outcome.key)
            try:
                with self.env.cr.savepoint():
                    asset._esd_record_one(outcome)
            except esd_jobs.CONFLICTS:
                raise  # the whole batch starts over
            except Exception as exc:  # any error fails this license only
                _logger.exception("ESD license %s: its result could not be recorded", asset.id)
                with self.env.cr.savepoint():
                    asset._esd_set_failed(
                        self.env._(
                            "Its result could not be recorded (%s). Retry provisioning.",
                            redact(str(exc)),
                        )
                    )

    def _esd_record_one(self, outcome):
        if outcome.error:
            self._esd_fail(str(outcome.error), transient=outcome.error.transient, ordered=True)
        else:
            self._esd_set_delivered(outcome)

    # ------------------------------------------------------------------ CIS accounts
    def _esd_accounts(self):
        """The CIS accounts the licenses of ``self`` need (customer's, reseller's): created,
        not synchronized, when missing."""
        Account = self.env["esd.partner.account"]
        accounts = Account.sudo()
        for asset in self:
            for partner in asset.customer_id | asset.billing_partner_id:
                accounts |= Account._esd_ensure(partner, asset.instance_id)
        return accounts

    def _esd_account_role(self, partner):
        """The role ``partner`` has at CIS for these licenses."""
        resells = any(a.billing_partner_id == partner != a.customer_id for a in self)
        return partner.esd_role or ("reseller" if resells else "user")

    def _esd_sync_accounts(self):
        """Synchronize the CIS accounts these licenses need, each once; return those ready.

        A license whose account CIS refused fails with the reason; one whose account CIS did not
        answer for retries later (the account keeps its request id). An account another worker
        is synchronizing is waited for: its row lock is released at that worker's commit, after
        which this batch starts over (a serialization failure) and finds it synchronized.
        """
        pending = self._esd_accounts().filtered(lambda a: a.sync_status == "not_synced")
        errors = {}
        if pending:
            self.env.flush_all()
            with esd_jobs.expected_conflicts():  # a serialization failure here is expected
                self.env.cr.execute(
                    "SELECT id FROM esd_partner_account WHERE id IN %s ORDER BY id FOR UPDATE",
                    [tuple(pending.ids)],
                )
            for account in pending:
                errors[account.id] = account._esd_sync(self._esd_account_role(account.partner_id))
        ready = self.browse()
        for asset in self:
            accounts = asset._esd_accounts()
            refused = accounts.filtered(lambda a: a.sync_status == "failed")
            unanswered = accounts.filtered(lambda a: a.sync_status == "not_synced")
            if refused:
                asset._esd_set_failed(refused[0]._esd_refusal())
            elif unanswered:
                asset._esd_fail(str(errors[unanswered[0].id]), transient=True)
            else:
                ready |= asset
        return ready

    def _esd_job(self):
        """The plain job for the pure provisioning code."""
        self.ensure_one()
        customer = self.customer_id._esd_account(self.instance_id)
        reseller = self.env["esd.partner.account"]
        if self.billing_partner_id != self.customer_id:
            reseller = self.billing_partner_id._esd_account(self.instance_id)
        return provisioning.Job(
            key=self.id,
            product_id=self.product_id.product_tmpl_id.esd_product_id,
            customer_account_id=customer.account_id,
            reseller_account_id=reseller.account_id or None,
            request_id=self.request_id,
            external_reference=f"{self.sale_order_id.name}/{self.name}",
        )

    # ------------------------------------------------------------------ license emails
    # The license email job is the one writer of a license's email state: Odoo's mail queue
    # sends the emails and only wakes this job, which records each outcome on its license,
    # queues again what could not leave, and removes what was sent.
    @api.model
    def _cron_send_welcome(self):
        """One batch of license emails to queue, of outcomes to record and of failed emails to
        queue again, each license claimed after its order's row (the lock order of every writer
        of licenses); report the progress, commit. Returns how many licenses were handled. A
        concurrent update rolls the call back quietly; it comes back at once.

        When every license whose email is due is held by another transaction (a provisioning
        batch holds its order through its CIS calls, an invoice being made), the call waits for
        the oldest one, a few seconds at most, then emails it while it holds it: the holder's
        own trigger of this cron may come while this call runs, and Odoo's runner drops it at
        the call's end."""
        done = 0
        with esd_jobs.expected_conflicts():
            for attempt in range(2):
                try:
                    handled, claimed = self._esd_welcome_work()
                    done += handled
                except esd_jobs.CONFLICTS:
                    if not esd_jobs.rollback(self.env):
                        raise
                    _logger.info("ESD license emails: started over after a concurrent update")
                    claimed = False
                remaining = self.search_count(
                    ["|", ("welcome_pending", "=", True), ("mail_state", "=", "queued")]
                )
                if not remaining or claimed or attempt or not self._esd_wait_for_welcome_holder():
                    break
            if remaining and not claimed:
                # Still held, or the emails wait in the mail queue: come back shortly instead
                # of at the next interval.
                esd_jobs.trigger(
                    self.env,
                    "microsoft_esd.ir_cron_esd_welcome",
                    fields.Datetime.now()
                    + datetime.timedelta(seconds=WELCOME_LOCKED_RETRY_SECONDS),
                )
            esd_jobs.finish(self.env, done, remaining)
        return done

    @api.model
    def _esd_wait_for_welcome_holder(self, wait=WELCOME_HOLDER_WAIT_SECONDS):
        """Commit, then wait up to ``wait`` seconds for the transaction holding the oldest
        license whose email is due (its order's row, then its own) and keep it locked: True
        once held, False when another transaction still holds it (or no license's email is
        due). Had the holder changed it, the rest of the wait is in a fresh transaction."""
        esd_jobs.commit(self.env)
        cr = self.env.cr
        deadline = time.monotonic() + wait
        for _attempt in range(3):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                with cr.savepoint(flush=False), esd_jobs.lock_wait(cr, left):
                    held = esd_jobs.lock_orders_then_licenses(cr, "welcome_pending", 1, wait=True)
                return bool(held)
            except psycopg2.errors.LockNotAvailable:
                return False
            except psycopg2.errors.SerializationFailure:
                # The holder let go after changing the rows: a fresh snapshot, and lock again.
                if not esd_jobs.rollback(self.env):
                    return False
        return False

    @api.model
    def _esd_welcome_work(self):
        """The email job's work of one call: (licenses handled, whether emails were queued)."""
        assets = self._esd_lock("welcome_pending", WELCOME_BATCH, fresh=True)
        assets._esd_send_welcome_batch()
        done = len(assets)
        outcomes = self._esd_lock(
            "mail_state = 'queued' AND id IN (SELECT esd_asset_id FROM mail_mail WHERE "
            "esd_asset_id IS NOT NULL AND state IN ('sent', 'exception', 'cancel')) OR "
            "mail_state = 'queued' AND id NOT IN (SELECT esd_asset_id FROM mail_mail WHERE "
            "esd_asset_id IS NOT NULL)",
            WELCOME_BATCH,
        )
        outcomes._esd_record_mail_outcomes()
        done += len(outcomes)
        due = self._esd_lock(
            "mail_state = 'failed' AND (mail_retry_at <= (now() AT TIME ZONE 'UTC') OR "
            "COALESCE(mail_failed_generation, 0) < %s)",
            WELCOME_BATCH,
            params=[self._esd_mail_servers_generation()],
        )
        due._esd_queue_mail_again()
        done += len(due)
        return done, bool(assets)

    @api.model
    def _esd_send_pending_welcome(self):
        """Queue every pending license email, batch after batch (for Odoo shells and tests)."""
        done = 0
        while assets := self._esd_lock("welcome_pending", WELCOME_BATCH):
            assets._esd_send_welcome_batch()
            done += len(assets)
        return done

    def _esd_send_welcome_batch(self):
        """The whole batch rendered at once; if that fails, license by license."""
        try:
            with self.env.cr.savepoint():
                self._esd_send_welcome()
        except esd_jobs.CONFLICTS:
            raise
        except Exception:  # the licenses are retried one by one below
            for asset in self:
                asset._esd_send_welcome_alone()
        self.sudo().write({"welcome_pending": False})

    def _esd_license_template(self):
        """The license email template of this license's company, else the shared one."""
        self.ensure_one()
        shared = "microsoft_esd.mail_template_esd_welcome"
        template = self.env["mail.template"]._esd_company_copy(shared, self.company_id)
        return template or self.env.ref(shared)

    def _esd_send_welcome(self):
        """Queue one email per license, to the addresses it recorded at the sale, with its key.

        The template gives the wording; the key block is appended by code after it, with two
        random markers per email (models/mail_template.py). Each email is created already
        addressed and linked to its license, with a grant recording exactly what was made
        (models/mail_mail.py, models/esd_mail_grant.py); as the email leaves, mail.mail puts
        the key and activation link in place of the markers only if the email is unchanged. So
        no stored message, queued or failed email holds the key, no one who sent or resent it
        can read it back, and an email made any other way carries no key. The emails are not in
        the licenses' chatters; the outcome is (_esd_record_mail_outcomes). An earlier email of
        the same license that has not left is replaced.
        """
        if not self:
            return
        Grant = self.env["esd.mail.grant"]
        unaddressed = self.filtered(lambda a: not a.sudo().mail_to)
        for asset in unaddressed:
            asset._esd_mail_failed(
                "",
                self.env._(
                    "No valid email address was recorded for its customer at the sale. Press "
                    "Resend to... and give the customer's address."
                ),
            )
        assets = self - unaddressed
        if not assets:
            return
        self.env["mail.mail"].sudo().search(
            [("esd_asset_id", "in", assets.ids), ("state", "in", ("outgoing", "exception"))]
        ).unlink()
        planned = {}
        for asset in assets:
            markers = Grant._esd_new_markers()
            planned[asset.id] = {
                "email_to": asset.sudo().mail_to,
                "markers": markers,
                "key_block": asset._esd_mail_key_block(*markers),
            }
        mails = self.env["mail.mail"]
        queue = WELCOME_QUEUE.set(planned)
        try:
            with sanitize_once():
                for template, batch in assets.grouped(lambda a: a._esd_license_template()).items():
                    mails |= template.send_mail_batch(
                        batch.ids,
                        force_send=False,
                        email_layout_xmlid="mail.mail_notification_light",
                        email_values={"recipient_ids": [], "email_cc": False, "auto_delete": False},
                    )
        finally:
            WELCOME_QUEUE.reset(queue)
        if len(mails) != len(assets) or set(mails.esd_asset_id.ids) != set(assets.ids):
            raise RuntimeError("the license emails were not made one per license")
        assets.sudo().write({"mail_state": "queued", "mail_error": False, "mail_retry_at": False})
        # The key waits in Odoo's mail queue: send it at the queue's next wake-up, not at its
        # hourly run.
        esd_jobs.trigger(self.env, "mail.ir_cron_mail_scheduler_action")

    def _esd_send_welcome_alone(self):
        """Email one license; a failure is recorded on it (chatter and activity) and not raised."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                self._esd_send_welcome()
        except esd_jobs.CONFLICTS:
            raise
        except Exception as exc:  # one email never blocks the others
            _logger.exception("ESD license %s: its email could not be prepared", self.id)
            with self.env.cr.savepoint():
                self._esd_mail_failed("", redact(str(exc)))

    # ------------------------------------------------------------------ email outcomes
    def _esd_record_mail_outcomes(self):
        """What Odoo's mail queue did with the license emails of these licenses (claimed by
        this transaction): sent ones are recorded and removed, failed ones recorded and planned
        again, deleted ones made again."""
        mails = self.env["mail.mail"].sudo().search([("esd_asset_id", "in", self.ids)], order="id")
        for asset in self:
            mine = mails.filtered(lambda m, a=asset: m.esd_asset_id == a)
            sent = mine.filtered(lambda m: m.state == "sent")
            failed = mine.filtered(lambda m: m.state in ("exception", "cancel"))
            if sent:
                asset._esd_mail_sent(", ".join(email_split_and_format(sent[-1].email_to or "")))
            elif failed:
                asset._esd_mail_failed(
                    ", ".join(email_split_and_format(failed[-1].email_to or "")),
                    failed[-1].failure_reason or self.env._("the mail server refused it"),
                )
            elif not mine:
                asset.message_post(
                    body=self.env._("Its queued license email was deleted: it is made again.")
                )
                asset.sudo().write({"welcome_pending": True, "mail_state": "none"})
                esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_welcome")
        (mails.filtered(lambda m: m.state == "sent")).unlink()

    def _esd_mail_sent(self, addresses):
        self.ensure_one()
        self.sudo().write(
            {"mail_state": "sent", "mail_error": False, "mail_retry_at": False, "mail_attempts": 0}
        )
        self._message_log(
            body=self.env._("License email sent to %(recipients)s.", recipients=addresses)
        )
        self._esd_close_activities(
            "microsoft_esd.mail_activity_esd_email", self.env._("The license email was sent.")
        )

    def _esd_mail_failed(self, addresses, reason):
        """The license email could not leave: said on the license (chatter, its email state, an
        activity), and planned again after a backoff, or as soon as a mail server changes."""
        self.ensure_one()
        attempts = self.sudo().mail_attempts + 1
        delay = MAIL_RETRY_MINUTES[min(attempts, len(MAIL_RETRY_MINUTES)) - 1]
        now = fields.Datetime.now()
        retry_at = fields.Datetime.add(now, minutes=delay)
        self.sudo().write(
            {
                "mail_state": "failed",
                "mail_error": reason,
                "mail_attempts": attempts,
                "mail_failed_at": now,
                "mail_failed_generation": self._esd_mail_servers_generation(),
                "mail_retry_at": retry_at,
            }
        )
        self.message_post(
            body=self.env._(
                "The license email to %(recipients)s could not be sent: %(reason)s. Odoo sends "
                "it again by itself in %(minutes)s minutes, and as soon as an outgoing mail "
                "server is added or changed (Settings > Technical > Outgoing Mail Servers, in "
                "developer mode).",
                recipients=addresses or self.env._("nobody"),
                reason=reason,
                minutes=delay,
            )
        )
        self._esd_schedule_activity(
            "microsoft_esd.mail_activity_esd_email",
            self.env._(
                "The license email could not be sent (%s). Odoo sends it again by itself; "
                "check the outgoing mail server, or press Resend to... for another address.",
                reason,
            ),
        )
        esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_welcome", retry_at)

    def _esd_queue_mail_again(self):
        """Put the failed license emails of these licenses back in Odoo's mail queue."""
        mails = (
            self.env["mail.mail"]
            .sudo()
            .search([("esd_asset_id", "in", self.ids), ("state", "in", ("exception", "cancel"))])
        )
        again = mails.esd_asset_id
        mails.write({"state": "outgoing", "failure_reason": False, "failure_type": False})
        again.sudo().write({"mail_state": "queued", "mail_retry_at": False})
        # A failed license whose email is gone (replaced, deleted) is made again.
        (self - again).sudo().write({"welcome_pending": True, "mail_state": "none"})
        if mails:
            esd_jobs.trigger(self.env, "mail.ir_cron_mail_scheduler_action")

    @api.model
    def _esd_mail_servers_generation(self):
        """How many times an outgoing mail server was added or changed: a license email that
        failed with an older generation is sent again at once."""
        return self._esd_number_param("microsoft_esd.mail_servers_generation", 0, int, 0)
