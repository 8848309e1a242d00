import datetime
import logging

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..microsoft_esd import reconciliation
from ..microsoft_esd.errors import EsdError
from ..models import esd_jobs
from ..models.const import TOKEN_STATUSES
from ..models.esd_access import check_caller

_logger = logging.getLogger(__name__)

KINDS = [
    (reconciliation.STATUS_DIFFERS, "Status differs"),
    (reconciliation.UNKNOWN_TO_CIS, "Unknown to CIS"),
    (reconciliation.FAILED_LOCALLY, "Failed locally"),
    (reconciliation.INVOICED_NOT_DELIVERED, "Invoiced, not delivered"),
    (reconciliation.DELIVERED_NOT_INVOICED, "Delivered, not invoiced"),
    (reconciliation.RETURNED_NOT_CREDITED, "Returned at Microsoft, not credited"),
]


class EsdReconciliation(models.TransientModel):
    """Compare the active licenses with CIS and offer the corrective actions."""

    _name = "esd.reconciliation"
    _description = "Microsoft ESD Reconciliation"

    name = fields.Char(default=lambda self: self.env._("Reconciliation"), readonly=True)
    instance_ids = fields.Many2many(
        "esd.instance",
        string="Instances",
        default=lambda self: self.env["esd.instance"].search([("state", "=", "connected")]),
    )
    line_ids = fields.One2many("esd.reconciliation.line", "reconciliation_id", readonly=True)
    checked_count = fields.Integer("Licenses compared", readonly=True)
    finding_count = fields.Integer("Findings", compute="_compute_finding_count")
    done = fields.Boolean(readonly=True)
    unknown_to_odoo_count = fields.Integer(
        "Licenses at CIS not in Odoo",
        readonly=True,
        help="Licenses CIS reports (and not returned) that Odoo does not hold: sold outside "
        "Odoo. An ESD manager takes them over with Import Licenses.",
    )

    @api.depends("line_ids")
    def _compute_finding_count(self):
        for wizard in self:
            wizard.finding_count = len(wizard.line_ids)

    def action_run(self):
        self.ensure_one()
        # The instances as stored: one of another company is refused, not silently left out.
        check_caller(self.sudo().instance_ids.with_env(self.env), operation="read")
        if not self.instance_ids:
            raise UserError(self.env._("Choose at least one connected instance."))
        # Findings are written by this tool only (users read them): no one forges one over RPC.
        self.line_ids.sudo().unlink()
        lines, checked, unknown = [], 0, 0
        Asset = self.env["esd.asset"]
        for instance in self.instance_ids:
            assets = Asset.search(
                [
                    ("instance_id", "=", instance.id),
                    "|",
                    ("state", "=", "active"),
                    ("return_state", "in", ("accepted", "external")),
                ]
            )
            checked += len(assets)
            remote = self._remote_licenses(instance, assets)
            unknown += self._count_unknown_to_odoo(remote)
            pending_orders = assets.filtered(
                lambda a: a.sync_status == "unsynchronised"
            ).sale_order_id
            local = [
                reconciliation.Local(
                    asset.id,
                    asset.esd_license_id,
                    asset.token_status,
                    asset.sync_status,
                    bool(asset.invoice_line_id),
                    # An imported license has no Odoo sale: nothing of it is to be invoiced.
                    bool(asset.sale_order_id) and asset.sale_order_id not in pending_orders,
                    asset.return_state,
                )
                for asset in assets
            ]
            for finding in reconciliation.compare(local, remote):
                lines.append(
                    {
                        "asset_id": finding.key,
                        "kind": finding.kind,
                        "reported_status": finding.reported_status,
                        "applicable": finding.applicable,
                    }
                )
        self.sudo().write(
            {
                "line_ids": [fields.Command.create(v) for v in lines],
                "checked_count": checked,
                "unknown_to_odoo_count": unknown,
                "done": True,
            }
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "current",
        }

    @api.model
    def _count_unknown_to_odoo(self, remote):
        """How many licenses CIS reports, not returned, that no license of Odoo is."""
        live = {key for key, lic in remote.items() if lic.token_status != "return_accepted"}
        known = (
            self.env["esd.asset"]
            .sudo()
            .with_context(active_test=False)
            .search([("esd_license_id", "in", list(live))])
            .mapped("esd_license_id")
        )
        return len(live - set(known))

    @api.model
    def _remote_licenses(self, instance, assets):
        """Every license CIS changed since the oldest purchase: one paged call, not one each."""
        delivered = assets.filtered(lambda a: a.sync_status == "synchronized")
        if not delivered:
            return {}
        oldest = min(delivered.mapped("purchase_date"))
        since = datetime.datetime.combine(oldest, datetime.time.min) - datetime.timedelta(days=1)
        try:
            changes = instance._esd_client().iter_license_changes(since)
            return {change.license_id: change for change in changes}
        except EsdError as exc:
            raise UserError(
                self.env._("Instance %(name)s: %(error)s", name=instance.name, error=exc)
            ) from None

    @api.model
    def _cron_reconcile(self):
        """Daily: report the differences to the ESD managers, instance by instance (each
        committed on its own), and report the progress."""
        instances = self.env["esd.instance"].search([("state", "=", "connected")])
        try:
            with esd_jobs.expected_conflicts():
                esd_jobs.each_in_savepoint(
                    instances,
                    self._esd_reconcile_instance,
                    "it could not be reconciled",
                    commit_each=True,
                )
        except esd_jobs.CONFLICTS:
            # Licenses changed under it (provisioning at work): again in a few minutes.
            if not esd_jobs.rollback(self.env):
                raise
            esd_jobs.trigger(
                self.env,
                "microsoft_esd.ir_cron_esd_reconcile",
                fields.Datetime.add(fields.Datetime.now(), minutes=5),
            )
        esd_jobs.finish(self.env, len(instances), 0)

    @api.model
    def _esd_reconcile_instance(self, instance):
        wizard = self.create({"instance_ids": [fields.Command.set(instance.ids)]})
        try:
            with self.env.cr.savepoint():
                wizard.action_run()
        except UserError as exc:
            _logger.warning("reconciliation of ESD instance %s failed: %s", instance.id, exc)
            return
        if not wizard.line_ids:
            return
        counts = {}
        for line in wizard.line_ids:
            counts[line.kind] = counts.get(line.kind, 0) + 1
        # The findings' labels as the selection shows them, in the user's language.
        kind = self.env["esd.reconciliation.line"]._fields["kind"]
        labels = dict(kind._description_selection(self.env))
        summary = ", ".join(f"{n} {labels[k].lower()}" for k, n in counts.items())
        instance.message_post(
            body=self.env._(
                "Reconciliation found: %s. Open Sales > Microsoft ESD > Reconciliation.",
                summary,
            )
        )


class EsdReconciliationLine(models.TransientModel):
    _name = "esd.reconciliation.line"
    _description = "Microsoft ESD Reconciliation Finding"

    reconciliation_id = fields.Many2one("esd.reconciliation", required=True, ondelete="cascade")
    asset_id = fields.Many2one("esd.asset", "License", required=True, readonly=True)
    customer_id = fields.Many2one(related="asset_id.customer_id")
    product_id = fields.Many2one(related="asset_id.product_id")
    sale_order_id = fields.Many2one(related="asset_id.sale_order_id")
    local_status = fields.Selection(related="asset_id.token_status", string="Status here")
    kind = fields.Selection(KINDS, "Finding", required=True, readonly=True)
    reported_status = fields.Selection(
        TOKEN_STATUSES,
        "Status at CIS",
        readonly=True,
    )
    applicable = fields.Boolean(readonly=True)
    resolved = fields.Boolean(readonly=True)

    # The corrective actions never trust a stored finding: each asks CIS when it acts.
    def action_apply_cis_status(self):
        """Ask CIS for the license's status now and apply the allowed transition."""
        check_caller(self.asset_id)
        for line in self.filtered(lambda line: line.applicable and not line.resolved):
            line.asset_id.sudo()._esd_update_status()
            line.sudo().resolved = True
        return self._reopen()

    def action_credit(self):
        """Credit a license Microsoft returned: CIS is asked now whether it did."""
        check_caller(self.asset_id)
        for line in self.filtered(lambda line: not line.resolved):
            asset = line.asset_id.sudo()
            if asset.return_state == "none":
                asset._esd_update_status()  # applies the return if CIS reports it now
            if asset.return_state not in ("accepted", "external"):
                labels = dict(asset._fields["token_status"]._description_selection(self.env))
                raise UserError(
                    self.env._(
                        "%(license)s: Microsoft reports it %(status)s, not returned: there is "
                        "nothing to credit.",
                        license=asset.name,
                        status=labels.get(asset.token_status, asset.token_status),
                    )
                )
            line.asset_id.action_credit_return()
            line.sudo().resolved = asset.return_state == "done"
        return self._reopen()

    def action_retry_provisioning(self):
        self.asset_id.action_retry_provisioning()  # checks its caller
        self.sudo().resolved = True
        return self._reopen()

    def action_invoice(self):
        check_caller(self.asset_id)
        self.asset_id.sale_order_id.action_esd_retry_invoicing()  # checks invoicing rights
        self.sudo().resolved = bool(self.asset_id.invoice_line_id)
        return self._reopen()

    def action_open_license(self):
        return {
            "type": "ir.actions.act_window",
            "res_model": "esd.asset",
            "res_id": self.asset_id.id,
            "view_mode": "form",
            "target": "current",
        }

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "res_model": "esd.reconciliation",
            "res_id": self.reconciliation_id.id,
            "view_mode": "form",
            "target": "current",
        }
