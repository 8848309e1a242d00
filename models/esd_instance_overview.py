from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.osv import expression

from ..microsoft_esd import prices
from .esd_access import ESD_USER, check_caller

# The overview's numbers: the licenses each one counts (the list it opens shows the same).
# Counted with the reader's own rights (record rules), as the list it opens shows them.
OVERVIEW = {
    "pending": [("state", "=", "active"), ("sync_status", "=", "unsynchronised")],
    "failed": [("state", "=", "active"), ("sync_status", "=", "failed")],
    "cancel_requests": [("cancel_request_state", "=", "pending")],
    "to_credit": [("return_state", "in", ("accepted", "external"))],
    "not_invoiced": [
        ("state", "=", "active"),
        ("sync_status", "=", "synchronized"),
        ("sale_order_id", "!=", False),
        ("invoice_line_id", "=", False),
    ],
    "sold_month": [("imported", "=", False)],
}
# What reconciliation reports without asking CIS: each of these is one of its findings.
FINDINGS = ("failed", "to_credit", "not_invoiced")


class EsdInstance(models.Model):
    """The ESD overview: per instance, what needs someone today, each number one click from its
    list (Sales > Microsoft ESD > Overview)."""

    _inherit = "esd.instance"

    overview_pending_count = fields.Integer("Being provisioned", compute="_compute_overview")
    overview_failed_count = fields.Integer("Failed", compute="_compute_overview")
    overview_cancel_requests_count = fields.Integer(
        "Cancellation requests", compute="_compute_overview"
    )
    overview_to_credit_count = fields.Integer("To credit", compute="_compute_overview")
    overview_not_invoiced_count = fields.Integer("Not invoiced", compute="_compute_overview")
    overview_findings_count = fields.Integer(
        "Reconciliation findings",
        compute="_compute_overview",
        help="The findings reconciliation reports from what Odoo knows (failed, delivered "
        "not invoiced, returned not credited). Those that need CIS's word (status differs, "
        "unknown to CIS) appear when Reconciliation runs.",
    )
    overview_sold_month_count = fields.Integer("Sold this month", compute="_compute_overview")
    overview_sold_month_amount = fields.Monetary(
        "Sales this month", compute="_compute_overview", currency_field="overview_currency_id"
    )
    overview_margin_month_amount = fields.Monetary(
        "Margin this month", compute="_compute_overview", currency_field="overview_currency_id"
    )
    overview_margin_month_percent = fields.Float(
        "Margin this month (%)", compute="_compute_overview", digits=(16, 1)
    )
    overview_price_changes_count = fields.Integer(
        "Price changes this month", compute="_compute_overview"
    )
    overview_currency_id = fields.Many2one(related="company_id.currency_id")
    overview_certificate_days = fields.Integer(
        "Certificate expires in (days)", compute="_compute_overview"
    )

    def _overview_domain(self, key):
        domain = list(OVERVIEW[key])
        if key == "sold_month":
            today = fields.Date.context_today(self)
            domain.append(("purchase_date", ">=", today.replace(day=1)))
        return domain

    @api.depends_context("uid", "allowed_company_ids")
    def _compute_overview(self):
        Asset = self.env["esd.asset"]
        counts = {}
        for key in OVERVIEW:
            groups = Asset._read_group(
                [("instance_id", "in", self.ids), *self._overview_domain(key)],
                ["instance_id"],
                ["__count"],
            )
            counts[key] = {instance.id: count for instance, count in groups}
        amounts, margins = {}, {}
        if self.env.user.has_group("base.group_user"):
            groups = Asset._read_group(
                [("instance_id", "in", self.ids), *self._overview_domain("sold_month")],
                ["instance_id"],
                ["net_revenue:sum", "margin:sum"],
            )
            amounts = {instance.id: amount for instance, amount, _margin in groups}
            margins = {instance.id: margin for instance, _amount, margin in groups}
        changes = {}
        if self.env.user.has_group(ESD_USER):
            changes = dict(
                self.env["esd.price.change"]._read_group(
                    [("instance_id", "in", self.ids), *self._overview_price_changes_domain()],
                    ["instance_id"],
                    ["__count"],
                )
            )
        now = fields.Datetime.now()
        for instance in self:
            get = {key: counts[key].get(instance.id, 0) for key in OVERVIEW}
            instance.overview_pending_count = get["pending"]
            instance.overview_failed_count = get["failed"]
            instance.overview_cancel_requests_count = get["cancel_requests"]
            instance.overview_to_credit_count = get["to_credit"]
            instance.overview_not_invoiced_count = get["not_invoiced"]
            instance.overview_findings_count = sum(get[key] for key in FINDINGS)
            instance.overview_sold_month_count = get["sold_month"]
            instance.overview_sold_month_amount = amounts.get(instance.id, 0.0)
            instance.overview_margin_month_amount = margins.get(instance.id, 0.0)
            instance.overview_margin_month_percent = prices.margin(
                amounts.get(instance.id, 0.0),
                amounts.get(instance.id, 0.0) - margins.get(instance.id, 0.0),
            )[1]
            instance.overview_price_changes_count = changes.get(instance, 0)
            expiry = instance.certificate_expiry
            instance.overview_certificate_days = (expiry - now).days if expiry else 0

    def _overview_price_changes_domain(self):
        today = fields.Date.context_today(self)
        return [("date", ">=", fields.Datetime.to_datetime(today.replace(day=1)))]

    def action_esd_overview_price_changes(self):
        """This month's price changes of this instance."""
        self.ensure_one()
        check_caller(self, operation="read")
        changes = self.env["esd.price.change"].search(
            [("instance_id", "=", self.id), *self._overview_price_changes_domain()]
        )
        return changes._esd_open(self.env._("Price changes this month: %s", self.name))

    def _overview_titles(self):
        return {
            "pending": self.env._("Licenses being provisioned"),
            "failed": self.env._("Licenses whose provisioning failed"),
            "cancel_requests": self.env._("Cancellation requests to decide"),
            "to_credit": self.env._("Returns waiting for a credit note"),
            "not_invoiced": self.env._("Licenses delivered, not invoiced"),
            "sold_month": self.env._("Licenses sold this month"),
            "findings": self.env._("Reconciliation findings"),
        }

    def action_esd_overview_open(self):
        """The licenses behind one number of the overview (context key ``esd_overview``)."""
        self.ensure_one()
        check_caller(self, operation="read")
        key = self.env.context.get("esd_overview")
        titles = self._overview_titles()
        if key not in titles:
            raise UserError(self.env._("The overview has no list called %s.", key))
        if key == "findings":
            domain = expression.OR([self._overview_domain(k) for k in FINDINGS])
        else:
            domain = self._overview_domain(key)
        return {
            "type": "ir.actions.act_window",
            "name": f"{titles[key]}: {self.name}",
            "res_model": "esd.asset",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": expression.AND([[("instance_id", "=", self.id)], domain]),
            "context": {"create": False},
        }

    def action_esd_overview_reconcile(self):
        """Reconciliation of this instance, ready to run."""
        self.ensure_one()
        check_caller(self, operation="read")
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Reconciliation"),
            "res_model": "esd.reconciliation",
            "view_mode": "form",
            "target": "new",
            "context": {"default_instance_ids": [fields.Command.set(self.ids)]},
        }
