import logging
import uuid

import psycopg2.errors

from odoo import Command, _, api, fields, models, modules
from odoo.exceptions import UserError

from ..microsoft_esd import provisioning
from .esd_access import check_caller
from .esd_asset import INTERNAL

_logger = logging.getLogger(__name__)


class EsdAsset(models.Model):
    """Provisioning: order each license from CIS, record it, email it, invoice its order."""

    _inherit = "esd.asset"

    sync_status = fields.Selection(
        [
            ("unsynchronised", "Unsynchronised"),
            ("synchronized", "Synchronized"),
            ("failed", "Failed"),
        ],
        "Provisioning",
        default="unsynchronised",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    sync_error = fields.Text("Provisioning Error", readonly=True, groups=INTERNAL)
    sync_attempts = fields.Integer(readonly=True, default=0, groups=INTERNAL)
    next_attempt_at = fields.Datetime(readonly=True, groups=INTERNAL)
    welcome_pending = fields.Boolean(
        readonly=True,
        copy=False,
        index=True,
        groups=INTERNAL,
        help="The welcome email waits for its cron.",
    )
    welcome_partner_ids = fields.Many2many(
        "res.partner",
        compute="_compute_welcome_partner_ids",
        string="License Email Recipients",
        help="The customer plus the instance's extra recipients.",
    )

    @api.depends("customer_id", "instance_id.extra_recipient_ids")
    def _compute_welcome_partner_ids(self):
        for asset in self:
            asset.welcome_partner_ids = asset.customer_id | asset.instance_id.extra_recipient_ids

    def action_retry_provisioning(self):
        check_caller(self)
        failed = self.sudo().filtered(lambda a: a.sync_status == "failed")
        if not failed:
            raise UserError(_("Only licenses whose provisioning failed can be retried."))
        failed.write(
            {
                "sync_status": "unsynchronised",
                "sync_error": False,
                "sync_attempts": 0,
                "next_attempt_at": False,
            }
        )
        failed.activity_ids.filtered(
            lambda a: a.activity_type_id == self.env.ref("mail.mail_activity_data_todo")
        ).action_feedback(feedback=_("Provisioning retried."))
        self._esd_trigger_provisioning()
        return True

    # ------------------------------------------------------------------ provisioning
    @api.model
    def _esd_trigger_provisioning(self):
        self.env.ref("microsoft_esd.ir_cron_esd_provision")._trigger()

    @api.model
    def _esd_parallelism(self):
        value = self.env["ir.config_parameter"].sudo().get_param("microsoft_esd.parallelism", "8")
        try:
            return max(1, int(value))
        except ValueError:
            return provisioning.DEFAULT_PARALLELISM

    @api.model
    def _esd_lock(self, where, limit, commit):
        """Lock up to ``limit`` licenses matching ``where``; rows another worker holds are skipped.

        Under REPEATABLE READ, a row another worker updated and committed after this statement's
        snapshot raises a serialization failure instead of being skipped. At claim time this
        worker has nothing uncommitted (in commit mode), so it starts a fresh transaction and
        claims again.
        """
        self.env.flush_all()
        for _attempt in range(5):
            try:
                with self.env.cr.savepoint(flush=False):
                    self.env.cr.execute(
                        f"SELECT id FROM esd_asset WHERE {where} ORDER BY id LIMIT %s "
                        "FOR UPDATE SKIP LOCKED",
                        [limit],
                    )
                    return self.browse([row[0] for row in self.env.cr.fetchall()])
            except psycopg2.errors.SerializationFailure:
                if not commit:
                    raise
                self.env.cr.rollback()
        return self.browse()

    @api.model
    def _esd_claim(self, limit, commit=False):
        """Lock up to ``limit`` licenses due for provisioning."""
        return self._esd_lock(
            "sync_status = 'unsynchronised' AND active AND "
            "(next_attempt_at IS NULL OR next_attempt_at <= (now() at time zone 'UTC'))",
            limit,
            commit,
        )

    @api.model
    def _cron_provision(self):
        """Provision pending licenses batch by batch, committing each batch."""
        in_test = modules.module.current_test
        done = self._esd_provision_pending(commit=not in_test)
        remaining = self.search_count(
            [("sync_status", "=", "unsynchronised"), ("next_attempt_at", "=", False)]
        )
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)

    @api.model
    def _esd_provision_pending(self, commit=False, max_batches=None):
        """Claim and provision batches until nothing is claimable; returns licenses processed."""
        batch_size = self._esd_parallelism() * 4
        done = batches = 0
        while max_batches is None or batches < max_batches:
            assets = self._esd_claim(batch_size, commit)
            if not assets:
                break
            assets._esd_provision()
            done += len(assets)
            batches += 1
            if commit:
                self.env.cr.commit()
        # Invoice in a transaction that starts after this worker's last commit: whichever worker
        # commits last sees every license of the order delivered and invoices it.
        self._esd_invoice_ready(commit)
        # The emails go last: their cron writes the same licenses, so it must not run while
        # the invoice links them.
        if done:
            self.env.ref("microsoft_esd.ir_cron_esd_welcome")._trigger()
        return done

    @api.model
    def _esd_invoice_ready(self, commit=False):
        """Invoice the orders whose licenses are all settled and some delivered, not invoiced."""
        orders = self.search(
            [
                ("sync_status", "=", "synchronized"),
                ("invoice_line_id", "=", False),
                ("state", "=", "active"),
            ]
        ).sale_order_id
        for order in orders:
            try:
                with self.env.cr.savepoint():
                    # Another worker invoicing this order holds the lock, or changed it after our
                    # snapshot began: it does the job, this one skips.
                    self.env.cr.execute(
                        "SELECT id FROM sale_order WHERE id = %s FOR UPDATE NOWAIT", [order.id]
                    )
                    order._esd_invoice_delivered()
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                # Another transaction holds or changed the order or its licenses: try again in
                # a moment rather than at the next scheduled run.
                _logger.info("order %s: invoicing deferred after a concurrent update", order.id)
                self.env.ref("microsoft_esd.ir_cron_esd_provision")._trigger(
                    fields.Datetime.add(fields.Datetime.now(), seconds=10)
                )
                continue
            if commit:
                self.env.cr.commit()

    def _esd_provision(self):
        """Order the licenses of ``self`` (claimed by this transaction) and record the results."""
        try:
            self._esd_vault()  # a key that cannot be stored safely is not ordered
        except UserError as exc:
            for asset in self:
                asset._esd_fail(exc.args[0], transient=False)
            return
        delivered = self.browse()
        for instance, assets in self.grouped("instance_id").items():
            jobs, unsyncable = [], []
            for asset in assets:
                job = asset._esd_job()
                if isinstance(job, str):
                    unsyncable.append((asset, job))
                else:
                    jobs.append(job)
            for asset, reason in unsyncable:
                asset._esd_fail(reason, transient=False)
            if not jobs:
                continue
            try:
                client = instance._esd_client()
            except UserError as exc:
                for asset in assets.browse([job.key for job in jobs]):
                    asset._esd_fail(exc.args[0], transient=False)
                continue
            correlation_id = str(uuid.uuid4())
            outcomes = provisioning.order_all(client, jobs, self._esd_parallelism(), correlation_id)
            for outcome in outcomes:
                asset = self.browse(outcome.key)
                if outcome.error:
                    asset._esd_fail(str(outcome.error), transient=outcome.error.transient)
                else:
                    asset._esd_deliver(outcome)
                    delivered |= asset

    def _esd_job(self):
        """The plain job for the pure provisioning code, or the reason it cannot be ordered."""
        self.ensure_one()
        customer = self.customer_id._esd_account(self.instance_id)
        if customer.sync_status != "synchronized":
            return _(
                "%s is not synchronized with CIS: open its Sync Options.",
                self.customer_id.display_name,
            )
        reseller_account_id = None
        if self.billing_partner_id != self.customer_id:
            reseller = self.billing_partner_id._esd_account(self.instance_id)
            if reseller.sync_status != "synchronized":
                return _(
                    "The reseller %s is not synchronized with CIS: open its Sync Options.",
                    self.billing_partner_id.display_name,
                )
            reseller_account_id = reseller.account_id
        return provisioning.Job(
            key=self.id,
            product_id=self.product_id.product_tmpl_id.esd_product_id,
            customer_account_id=customer.account_id,
            reseller_account_id=reseller_account_id,
            request_id=self.request_id,
            external_reference=f"{self.sale_order_id.name}/{self.name}",
        )

    def _esd_deliver(self, outcome):
        lic = outcome.license
        # The welcome email posted next records the delivery in the chatter; tracking these
        # fields as well would double the messages (and the cost) of every license.
        self.sudo().with_context(tracking_disable=True).write(
            {
                "sync_status": "synchronized",
                "sync_error": False,
                "next_attempt_at": False,
                "esd_order_id": outcome.order.order_id,
                "esd_license_id": lic.license_id,
                "token_status": lic.token_status,
                "return_status": lic.return_status,
                "activation_date": lic.activation_date,
                "welcome_pending": True,
            }
        )
        self._esd_store_secrets(lic.token, lic.activation_link)

    def _esd_fail(self, message, transient):
        attempts = self.sync_attempts + 1
        if transient and attempts < provisioning.MAX_ATTEMPTS:
            delay = provisioning.retry_delay(attempts)
            self.write(
                {
                    "sync_attempts": attempts,
                    "sync_error": message,
                    "next_attempt_at": fields.Datetime.add(fields.Datetime.now(), seconds=delay),
                }
            )
            self.env.ref("microsoft_esd.ir_cron_esd_provision")._trigger(self.next_attempt_at)
            _logger.info("ESD license %s: transient failure, retry in %ss", self.id, delay)
            return
        self.write({"sync_status": "failed", "sync_error": message, "sync_attempts": attempts})
        self.message_post(body=_("Provisioning failed: %s", message))
        self.activity_schedule(
            "mail.mail_activity_data_todo",
            summary=_("ESD license not delivered"),
            note=_("%(error)s Fix the cause, then press Retry provisioning.", error=message),
            user_id=(self.sale_order_id.user_id or self.env.user).id,
        )

    @api.model
    def _cron_send_welcome(self):
        """Send the welcome emails of delivered licenses (kept on the record until sent)."""
        in_test = modules.module.current_test
        done = self._esd_send_pending_welcome(commit=not in_test)
        remaining = self.search_count([("welcome_pending", "=", True)])
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)

    @api.model
    def _esd_send_pending_welcome(self, commit=False, batch_size=50):
        done = 0
        while True:
            assets = self._esd_lock("welcome_pending", batch_size, commit)
            if not assets:
                return done
            assets._esd_send_welcome()
            assets.write({"welcome_pending": False})
            done += len(assets)
            if commit:
                self.env.cr.commit()

    def _esd_send_welcome(self):
        """Email each license to its recipients; the chatter records it without the key.

        The key travels only in the email: the template reads it from the rendering context,
        where only this method puts it, so no one else renders a key into a message (a
        template preview shows the masked key). The recipients are decided here, not by the
        template. The email is a queued mail.mail, not linked to the license (Odoo's chatter
        shows linked emails), deleted once sent.
        """
        template = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        secrets = self._esd_secrets()
        for asset in self:
            token, link = secrets[asset.id]
            template.with_context(
                esd_secrets={asset.id: {"token": token, "activation_link": link}}
            ).send_mail(
                asset.id,
                force_send=False,
                email_layout_xmlid="mail.mail_notification_light",
                email_values={
                    "model": False,
                    "res_id": False,
                    "recipient_ids": [Command.set(asset.welcome_partner_ids.ids)],
                    "email_to": False,
                    "email_cc": False,
                    "esd_asset_id": asset.id,
                },
            )
            recipients = ", ".join(
                f"{p.name} <{p.email}>" if p.email else p.name for p in asset.welcome_partner_ids
            )
            asset.message_post(
                body=_("License email sent to %(recipients)s.", recipients=recipients),
                subtype_xmlid="mail.mt_note",
            )
