import logging
import uuid

import psycopg2.errors

from odoo import Command, _, api, fields, models, modules
from odoo.exceptions import UserError
from odoo.tools import config

from ..microsoft_esd import licenses, provisioning
from ..microsoft_esd.contract import License
from ..microsoft_esd.errors import ConflictError, EsdError
from .notification import RELOAD, notification

_logger = logging.getLogger(__name__)

SYNC_STATUS = [
    ("unsynchronised", "Unsynchronised"),
    ("synchronized", "Synchronized"),
    ("failed", "Failed"),
]
TOKEN_STATUS = [
    ("activated", "Activated"),
    ("redeemed", "Redeemed"),
    ("return_accepted", "Return Accepted"),
]


class EsdAsset(models.Model):
    """One Microsoft license sold: its token, its status at Microsoft, its sale and invoice."""

    _name = "esd.asset"
    _description = "Microsoft ESD License"
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin"]
    _order = "id desc"

    name = fields.Char(required=True, readonly=True, copy=False, default=lambda self: _("New"))
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(related="sale_order_id.company_id", store=True, index=True)
    customer_id = fields.Many2one(
        "res.partner", "Customer", required=True, readonly=True, index=True, tracking=True
    )
    billing_partner_id = fields.Many2one(
        "res.partner", "Billed To", required=True, readonly=True, index=True
    )
    sale_order_id = fields.Many2one(
        "sale.order", "Order", required=True, readonly=True, index=True, ondelete="restrict"
    )
    sale_line_id = fields.Many2one(
        "sale.order.line", "Order Line", readonly=True, index=True, ondelete="set null"
    )
    user_id = fields.Many2one(related="sale_order_id.user_id", string="Salesperson")
    product_id = fields.Many2one("product.product", "Product", required=True, readonly=True)
    instance_id = fields.Many2one("esd.instance", "ESD Instance", required=True, readonly=True)
    price_unit = fields.Monetary("Price", readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    purchase_date = fields.Date(readonly=True, default=fields.Date.context_today)
    state = fields.Selection(
        [("active", "Active"), ("cancelled", "Cancelled")],
        default="active",
        required=True,
        readonly=True,
        tracking=True,
    )
    sync_status = fields.Selection(
        SYNC_STATUS,
        "Provisioning",
        default="unsynchronised",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    sync_error = fields.Text("Provisioning Error", readonly=True)
    sync_attempts = fields.Integer(readonly=True, default=0)
    next_attempt_at = fields.Datetime(readonly=True)
    token = fields.Char(
        "License Key",
        compute="_compute_token",
        inverse="_inverse_token",
        search="_search_token",
        readonly=True,
        help="Shown in full to ESD users and to the license's customer and reseller; masked "
        "(last 5 characters) for everyone else. Search with the whole key.",
    )
    token_stored = fields.Char(copy=False, groups="base.group_system")
    token_hash = fields.Char(copy=False, index=True, groups="base.group_system")
    token_status = fields.Selection(TOKEN_STATUS, readonly=True, tracking=True)
    return_status = fields.Selection(
        [("none", "None"), ("successful", "Successful")],
        readonly=True,
        default="none",
        tracking=True,
    )
    activation_link = fields.Char(readonly=True, copy=False)
    activation_date = fields.Datetime(readonly=True)
    esd_license_id = fields.Char("CIS License ID", readonly=True, copy=False, index=True)
    esd_order_id = fields.Char("CIS Order ID", readonly=True, copy=False)
    request_id = fields.Char(
        "Idempotency Key",
        required=True,
        readonly=True,
        copy=False,
        default=lambda self: str(uuid.uuid4()),
        help="Sent as MS-RequestId: ordering again with it returns the same license, never a "
        "second one.",
    )
    invoice_line_id = fields.Many2one("account.move.line", readonly=True, copy=False)
    credit_note_line_id = fields.Many2one("account.move.line", readonly=True, copy=False)
    credit_note_id = fields.Many2one(related="credit_note_line_id.move_id", string="Credit Note")
    cancel_request_state = fields.Selection(
        [("none", "None"), ("pending", "Pending"), ("rejected", "Rejected")],
        "Cancellation Request",
        default="none",
        readonly=True,
        copy=False,
        tracking=True,
    )
    cancel_request_comment = fields.Text(readonly=True, copy=False)
    cancel_requested_by = fields.Many2one("res.partner", readonly=True, copy=False)
    cancel_requested_on = fields.Datetime(readonly=True, copy=False)
    welcome_pending = fields.Boolean(
        readonly=True, copy=False, index=True, help="The welcome email waits for its cron."
    )
    invoice_id = fields.Many2one(related="invoice_line_id.move_id", string="Invoice")
    invoice_amount = fields.Monetary(
        related="invoice_line_id.price_total", string="Invoice Amount", currency_field="currency_id"
    )
    quantity = fields.Float(related="sale_line_id.product_uom_qty", string="Quantity")
    uom_id = fields.Many2one(related="product_id.uom_id", string="Unit")
    welcome_partner_ids = fields.Many2many(
        "res.partner",
        compute="_compute_welcome_partner_ids",
        string="License Email Recipients",
        help="The customer plus the instance's extra recipients.",
    )

    _sql_constraints = [
        ("request_id_unique", "UNIQUE(request_id)", "The idempotency key of a license is unique."),
        ("license_unique", "UNIQUE(esd_license_id)", "A CIS license is recorded once."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        sequence = self.env["ir.sequence"]
        for vals in vals_list:
            if vals.get("name", _("New")) == _("New"):
                vals["name"] = sequence.next_by_code("esd.asset") or _("New")
        return super().create(vals_list)

    def write(self, vals):
        if "request_id" in vals and any(asset.request_id != vals["request_id"] for asset in self):
            raise UserError(_("The idempotency key of a license never changes."))
        return super().write(vals)

    def unlink(self):
        delivered = self.filtered(lambda a: a.sync_status == "synchronized")
        if delivered:
            raise UserError(
                _(
                    "%s: a delivered license is proof of a sale and cannot be deleted. Archive "
                    "it instead.",
                    ", ".join(delivered.mapped("name")),
                )
            )
        if not self.env.user.has_group("microsoft_esd.group_esd_manager"):
            raise UserError(_("Only ESD managers can delete licenses that were never delivered."))
        return super().unlink()

    # ------------------------------------------------------------------ the key
    @api.model
    def _esd_token_key(self):
        """The encryption key, from Odoo's configuration file (never from the database)."""
        return config.get("esd_token_key") or None

    @api.model
    def _esd_token_hash_key(self):
        return self._esd_token_key() or self.env["ir.config_parameter"].sudo().get_param(
            "database.secret"
        )

    def _esd_token_visible(self):
        """ESD users, the license's customer and its reseller see the whole key."""
        self.ensure_one()
        if self.env.su or self.env.user.has_group("microsoft_esd.group_esd_user"):
            return True
        commercial = self.env.user.partner_id.commercial_partner_id
        return commercial in (self.customer_id | self.billing_partner_id)

    @api.depends_context("uid")
    def _compute_token(self):
        key = self._esd_token_key()
        for asset in self:
            try:
                token = licenses.unseal(asset.sudo().token_stored, key)
            except ValueError as exc:
                _logger.warning("license %s: %s", asset.id, exc)
                token = False
            asset.token = token if not token or asset._esd_token_visible() else licenses.mask(token)

    def _inverse_token(self):
        key, hash_key = self._esd_token_key(), self._esd_token_hash_key()
        for asset in self:
            asset.sudo().write(
                {
                    "token_stored": licenses.seal(asset.token, key) or False,
                    "token_hash": asset.token and licenses.keyed_hash(asset.token, hash_key),
                }
            )

    def _search_token(self, operator, value):
        if operator not in ("=", "ilike", "like", "=ilike", "=like") or not value:
            raise UserError(_("Search a license by its whole key."))
        digest = licenses.keyed_hash(value, self._esd_token_hash_key())
        ids = self.sudo()._search([("token_hash", "=", digest)])
        return [("id", "in", ids)]

    def _compute_access_url(self):
        super()._compute_access_url()
        for asset in self:
            asset.access_url = f"/my/esd/{asset.id}"

    # ------------------------------------------------------------------ actions
    def action_retry_provisioning(self):
        failed = self.filtered(lambda a: a.sync_status == "failed")
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

    def action_update_license_status(self):
        """Ask CIS for the status of these licenses and apply the allowed transitions."""
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

    def action_resend_activation(self):
        delivered = self.filtered(lambda a: a.sync_status == "synchronized" and a.state == "active")
        if not delivered:
            raise UserError(_("Only active, delivered licenses can be sent again."))
        delivered._esd_send_welcome()
        return notification(
            _("Activation email sent"), _("%s license email(s) queued.", len(delivered))
        )

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

    def action_cancel_license(self):
        """Return the licenses to Microsoft, then credit their invoice line in full."""
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

    def action_request_cancellation(self, comment=None, partner=None):
        """A customer asks to cancel; an ESD user approves or rejects it."""
        self._esd_check_returnable()
        for asset in self:
            if asset.cancel_request_state == "pending":
                raise UserError(_("A cancellation of %s is already pending.", asset.name))
        partner = partner or self.env.user.partner_id
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

    def action_withdraw_cancellation(self):
        pending = self.filtered(lambda a: a.cancel_request_state == "pending")
        if not pending:
            raise UserError(_("There is no pending cancellation request to withdraw."))
        pending.sudo().write({"cancel_request_state": "none", "cancel_request_comment": False})
        pending.sudo().message_post(body=_("Cancellation request withdrawn."))
        pending.sudo()._esd_close_cancellation_activities()
        return True

    def action_approve_cancellation(self):
        self._esd_close_cancellation_activities()
        return self.action_cancel_license()

    def action_reject_cancellation(self):
        pending = self.filtered(lambda a: a.cancel_request_state == "pending")
        pending.write({"cancel_request_state": "rejected"})
        pending.message_post(body=_("Cancellation request rejected."))
        pending._esd_close_cancellation_activities()
        return True

    def _esd_close_cancellation_activities(self):
        summary = _("Cancellation request to review")
        self.activity_ids.filtered(lambda a: a.summary == summary).action_feedback(
            feedback=_("Done.")
        )

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
                "token": lic.token,
                "token_status": lic.token_status,
                "return_status": lic.return_status,
                "activation_link": lic.activation_link,
                "activation_date": lic.activation_date,
                "welcome_pending": True,
            }
        )

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

        The key travels only in the email (a queued mail.mail, deleted once sent): a chatter
        message would keep it readable by everyone who can read the license's messages.
        """
        template = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        for asset in self:
            # Not linked to the license (model/res_id): Odoo's chatter shows linked emails.
            template.send_mail(
                asset.id,
                force_send=False,
                email_layout_xmlid="mail.mail_notification_light",
                email_values={"model": False, "res_id": False},
            )
            recipients = ", ".join(
                f"{p.name} <{p.email}>" if p.email else p.name for p in asset.welcome_partner_ids
            )
            asset.message_post(
                body=_("License email sent to %(recipients)s.", recipients=recipients),
                subtype_xmlid="mail.mt_note",
            )

    @api.depends("customer_id", "instance_id.extra_recipient_ids")
    def _compute_welcome_partner_ids(self):
        for asset in self:
            asset.welcome_partner_ids = asset.customer_id | asset.instance_id.extra_recipient_ids
