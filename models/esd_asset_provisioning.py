import contextvars
import datetime
import logging
import uuid

import psycopg2.errors
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import mute_logger

from ..microsoft_esd import licenses, lifecycle, provisioning
from ..microsoft_esd.errors import redact
from . import esd_jobs
from .esd_access import check_caller
from .mail_message import sanitize_once

_logger = logging.getLogger(__name__)

# What the welcome email holds instead of the key and the activation link, until mail.mail puts
# them in as the email leaves (models/mail_mail.py): no stored message ever holds a key.
MAIL_KEY_PLACEHOLDER = "ESD-LICENSE-KEY-PLACEHOLDER"
MAIL_LINK_PLACEHOLDER = "https://esd-activation-link.invalid/"
# The license emails being queued in this thread, {license id: its recipients' partner ids}: set
# by _esd_send_welcome around Odoo's rendering only (a request's context cannot set it), it lets
# mail.mail link each new email to its license as it is created (models/mail_mail.py).
WELCOME_QUEUE = contextvars.ContextVar("esd_welcome_queue", default=None)
# The template placeholders an ESD manager (not a template editor) may use.
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
# A welcome run that found every pending license locked by others runs again this soon.
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
    @api.depends_context("lang", "esd_mail_placeholders")
    def _compute_esd_mail_key_html(self):
        sending = self.env.context.get("esd_mail_placeholders")
        for asset in self:
            key = MAIL_KEY_PLACEHOLDER if sending else licenses.mask(asset.token_tail) or ""
            link = (
                Markup(
                    '<p style="margin: 16px 0;"><a href="%s" style="background-color: #875A7B; '
                    "padding: 8px 16px; color: #fff; border-radius: 5px; "
                    'text-decoration: none;">%s</a></p>'
                )
                % (MAIL_LINK_PLACEHOLDER, self.env._("Activate your license"))
                if sending
                else Markup("<p>%s</p>") % self.env._("The activation link is in the email.")
            )
            asset.esd_mail_key_html = (
                Markup(
                    '<table style="border-collapse: collapse; margin: 16px 0;">'
                    '<tr><td style="padding: 4px 12px 4px 0;">%s</td>'
                    '<td style="padding: 4px 0; font-family: monospace; font-size: 16px;">'
                    "<strong>%s</strong></td></tr>"
                    '<tr><td style="padding: 4px 12px 4px 0;">%s</td>'
                    '<td style="padding: 4px 0;">%s</td></tr></table>'
                )
                % (self.env._("License key"), key, self.env._("Reference"), asset.name or "")
                + link
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

    @api.depends("customer_id", "instance_id.extra_recipient_ids")
    def _compute_welcome_partner_ids(self):
        for asset in self:
            asset.welcome_partner_ids = asset.customer_id | asset.instance_id.extra_recipient_ids

    # ------------------------------------------------------------------ actions
    def action_retry_provisioning(self):
        check_caller(self)
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
        """Whether this license can still be stopped: never sent to Microsoft, or refused."""
        self.ensure_one()
        return not self.esd_license_id and lifecycle.allowed("stopped", self.lifecycle_state)

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

    def _esd_fail(self, message, transient):
        """A transient error is retried (capped, jittered backoff) for the retry window, 24
        hours by default, so a CIS outage heals by itself; anything else fails at once."""
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
    def _esd_lock(self, where, limit, fresh=False, order="id", params=()):
        """Lock up to ``limit`` licenses matching ``where``; rows another worker holds are skipped.

        Under REPEATABLE READ, a row another worker updated and committed after this statement's
        snapshot raises a serialization failure instead of being skipped. A cron claims with
        ``fresh`` (its transaction holds nothing uncommitted): it starts a fresh transaction and
        claims again; anyone else gets the failure.
        """
        self.env.flush_all()
        for _attempt in range(5):
            try:
                with self.env.cr.savepoint(flush=False), mute_logger("odoo.sql_db"):
                    self.env.cr.execute(
                        f"SELECT id FROM esd_asset WHERE {where} ORDER BY {order} LIMIT %s "
                        "FOR UPDATE SKIP LOCKED",
                        [*params, limit],
                    )
                    return self.browse([row[0] for row in self.env.cr.fetchall()])
            except psycopg2.errors.SerializationFailure:
                if not (fresh and esd_jobs.rollback(self.env)):
                    raise
        return self.browse()

    @api.model
    def _esd_claim(self, limit, fresh=False):
        """Lock up to ``limit`` licenses due for provisioning, the never-tried ones first."""
        return self._esd_lock(
            "sync_status = 'unsynchronised' AND active AND state = 'active' AND "
            "(next_attempt_at IS NULL OR next_attempt_at <= (now() at time zone 'UTC'))",
            limit,
            fresh,
            order="next_attempt_at NULLS FIRST, id",
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
    def _cron_provision(self):
        """One batch per call: claim, order, record, commit; then invoice, report progress.
        Returns how many licenses it processed.

        Odoo's cron runner calls again at once while licenses remain due. A batch that met a
        concurrent update (another worker committed a change to the same order after this
        transaction began) is rolled back whole and claimed again (same idempotency keys: CIS
        returns the same licenses).
        """
        try:
            done = self._esd_provision_batch(fresh=True)
            esd_jobs.commit(self.env)
        except psycopg2.errors.TransactionRollbackError:
            if not esd_jobs.rollback(self.env):
                raise
            _logger.info("ESD provisioning: batch rolled back after a concurrent update")
            self._esd_trigger_provisioning()
            done = 0
        # Invoiced in the transaction that starts after this worker's commit: whichever worker
        # commits last sees every license of the order delivered and invoices it.
        self.env["sale.order"]._esd_invoice_ready()
        esd_jobs.finish(self.env, done, self.search_count(self._esd_due_domain()))
        return done

    @api.model
    def _esd_provision_batch(self, fresh=False):
        """Claim one batch of due licenses and provision it; returns how many were processed."""
        assets = self._esd_claim(self._esd_parallelism() * 4, fresh)
        assets._esd_provision()
        if assets:
            # The emails go later, in their cron: it writes the same licenses, so it must not
            # run while the invoice links them.
            esd_jobs.trigger(self.env, "microsoft_esd.ir_cron_esd_welcome")
        return len(assets)

    @api.model
    def _esd_provision_pending(self):
        """Provision every due license, batch after batch, then invoice (for Odoo shells and
        tests; the crons work one batch per call and commit it). Returns how many."""
        done = 0
        while batch := self._esd_provision_batch():
            done += batch
        self.env["sale.order"]._esd_invoice_ready()
        return done

    def _esd_provision(self):
        """Order the licenses of ``self`` (claimed by this transaction) and record the results."""
        if not self:
            return
        try:
            self._esd_vault()  # a key that cannot be stored safely is not ordered
        except UserError as exc:
            self._esd_set_failed(str(exc))
            return
        # Under the claim's row locks (it claims active licenses only): an order cancelled since
        # is not ordered (its cancellation writes these rows, so it either committed before the
        # claim or waits for this batch).
        cancelled = self.filtered(lambda a: a.sale_order_id.state == "cancel")
        cancelled._esd_set_stopped()
        ready = (self - cancelled)._esd_sync_accounts()
        for instance, assets in ready.grouped("instance_id").items():
            try:
                client = instance._esd_client()
            except UserError as exc:
                assets._esd_set_failed(str(exc))
                continue
            jobs = [asset._esd_job() for asset in assets]
            assets._esd_order_and_record(client, jobs, str(uuid.uuid4()))

    def _esd_order_and_record(self, client, jobs, correlation_id):
        """Order the jobs of these licenses (claimed by this transaction) and record each
        outcome as it arrives, in this thread, while the pool orders the others: the CPU of
        the recording runs during the HTTP waits. The batch is recorded under one savepoint,
        its writes flushed together; when one outcome cannot be recorded, the savepoint is
        rolled back once every job is ordered and the outcomes are recorded one by one, each
        under its own savepoint, so that it alone fails. Nothing but HTTP runs in the pool's
        threads."""
        self._esd_prefetch_for_record()
        failed = []

        def record(outcome):
            if failed:
                return  # the batch is recorded again, one by one, below
            try:
                self.browse(outcome.key)._esd_record_one(outcome)
            except Exception as exc:  # raised below, once every job is ordered
                failed.append(exc)

        outcomes = None
        try:
            with self.env.cr.savepoint():
                outcomes = provisioning.order_all(
                    client, jobs, self._esd_parallelism(), correlation_id, on_outcome=record
                )
                if failed:
                    raise failed[0]
            return
        except psycopg2.errors.TransactionRollbackError:
            raise  # the whole batch starts over
        except Exception:
            if outcomes is None:
                raise  # not a recording error
            _logger.info("ESD provisioning: a batch is recorded license by license")
        self._esd_record_each(outcomes)

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
            except psycopg2.errors.TransactionRollbackError:
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
            self._esd_fail(str(outcome.error), transient=outcome.error.transient)
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
            with mute_logger("odoo.sql_db"):  # a serialization failure here is expected
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
    @api.model
    def _cron_send_welcome(self):
        """Send the welcome emails of one batch of delivered licenses (kept on the record until
        sent), report the progress, commit. Returns how many."""
        assets = self._esd_lock("welcome_pending", WELCOME_BATCH, fresh=True)
        assets._esd_send_welcome_batch()
        remaining = self.search_count([("welcome_pending", "=", True)])
        if remaining and not assets:
            # Every pending license is locked by another transaction (a provisioning batch
            # invoicing it, a page writing it): Odoo's runner takes "none done" for finished,
            # so come back shortly instead of at the next interval.
            esd_jobs.trigger(
                self.env,
                "microsoft_esd.ir_cron_esd_welcome",
                fields.Datetime.now() + datetime.timedelta(seconds=WELCOME_LOCKED_RETRY_SECONDS),
            )
        esd_jobs.finish(self.env, len(assets), remaining)
        return len(assets)

    @api.model
    def _esd_send_pending_welcome(self):
        """Send every pending welcome email, batch after batch (for Odoo shells and tests)."""
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
        except psycopg2.errors.TransactionRollbackError:
            raise
        except Exception:  # the licenses are retried one by one below
            for asset in self:
                asset._esd_send_welcome_alone()
        self.sudo().write({"welcome_pending": False})

    def _esd_send_welcome(self):
        """Email each license to its recipients; the chatter records it without the key.

        The key travels only in the email as it leaves: the queued email holds placeholders
        (rendered so only with this method's context), and mail.mail puts the key in when it
        sends it (models/mail_mail.py), so no stored message, queued or failed email holds the
        key, and no one who sent or resent it can read it back. The recipients are decided
        here, not by the template. The emails are queued mail.mail, not linked to the licenses
        (Odoo's chatter shows linked emails), deleted once sent. The template is rendered for
        the whole recordset at once (per language), as Odoo's mass mailing does; each email is
        created already linked to its license and addressed (WELCOME_QUEUE), and each body
        sanitized once (sanitize_once).
        """
        if not self:
            return
        template = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        queue = WELCOME_QUEUE.set({asset.id: asset.welcome_partner_ids.ids for asset in self})
        try:
            with sanitize_once():
                mails = template.with_context(esd_mail_placeholders=True).send_mail_batch(
                    self.ids,
                    force_send=False,
                    email_layout_xmlid="mail.mail_notification_light",
                    email_values={"recipient_ids": [], "email_to": False, "email_cc": False},
                )
                self._esd_log_welcome()
        finally:
            WELCOME_QUEUE.reset(queue)
        if len(mails) != len(self) or set(mails.esd_asset_id.ids) != set(self.ids):
            raise RuntimeError("the license emails were not made one per license")
        # The key waits in Odoo's mail queue: send it at the queue's next wake-up, not at its
        # hourly run.
        esd_jobs.trigger(self.env, "mail.ir_cron_mail_scheduler_action")

    def _esd_log_welcome(self):
        """The chatter's record of each license email: its recipients, never the key."""
        self._message_log_batch(
            {
                asset.id: self.env._(
                    "License email sent to %(recipients)s.",
                    recipients=", ".join(
                        f"{p.name} <{p.email}>" if p.email else p.name
                        for p in asset.welcome_partner_ids
                    ),
                )
                for asset in self
            }
        )

    def _esd_send_welcome_alone(self):
        """Email one license; a failure is recorded on it (chatter and activity) and not raised."""
        self.ensure_one()
        try:
            with self.env.cr.savepoint():
                self._esd_send_welcome()
        except psycopg2.errors.TransactionRollbackError:
            raise
        except Exception as exc:  # one email never blocks the others
            _logger.exception("ESD license %s: its email could not be prepared", self.id)
            with self.env.cr.savepoint():
                self.message_post(
                    body=self.env._("The license email could not be sent: %s", redact(str(exc)))
                )
                self._esd_schedule_activity(
                    "microsoft_esd.mail_activity_esd_email",
                    self.env._("Fix the cause, then press Resend Activation Email."),
                )
