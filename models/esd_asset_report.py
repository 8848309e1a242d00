from odoo import api, fields, models
from odoo.tools import SQL

from ..microsoft_esd import prices

RETURNED_STATES = ("accepted", "done", "external")
# Readable by internal users only, as the price paid is.
INTERNAL = "base.group_user"


class EsdAsset(models.Model):
    """The measures of the license reports: return rate, failure rate, net revenue, cost and
    margin.

    Stored so that the pivot and graph views aggregate them in SQL: a rate is the average of a
    value that is 100 for a license that counts and 0 for one that does not; the margin's % is
    the margin of the group over its revenue (see _read_group_select).
    """

    _inherit = "esd.asset"

    # What Microsoft charged for the license: the product's cost when it was sold.
    cost_unit = fields.Monetary(
        "Cost",
        readonly=True,
        groups=INTERNAL,
        help="Microsoft's price of the license when it was sold (the product's cost then), in "
        "the order's currency: margins stay true after Microsoft's prices move.",
    )
    pricelist_id = fields.Many2one(
        related="sale_order_id.pricelist_id",
        store=True,
        index="btree_not_null",
        string="Pricelist (Tier)",
        groups=INTERNAL,
    )
    net_cost = fields.Monetary(
        compute="_compute_margin",
        store=True,
        groups=INTERNAL,
        help="The cost of the license, nothing once it was returned (Microsoft takes it back).",
    )
    margin = fields.Monetary(
        compute="_compute_margin",
        store=True,
        groups=INTERNAL,
        help="Net revenue minus net cost.",
    )
    margin_percent = fields.Float(
        "Margin (%)",
        compute="_compute_margin",
        store=True,
        aggregator="avg",
        digits=(16, 1),
        groups=INTERNAL,
        help="The margin over the net revenue; a group's is its margin over its revenue.",
    )

    @api.depends("return_state", "token_status", "sync_status", "state", "price_unit")
    def _compute_report_measures(self):
        for asset in self:
            returned = (
                asset.return_state in RETURNED_STATES or asset.token_status == "return_accepted"
            )
            asset.returned_rate = 100.0 if returned else 0.0
            asset.failed_rate = 100.0 if asset.sync_status == "failed" else 0.0
            asset.net_revenue = asset.price_unit if asset.state == "active" else 0.0

    @api.depends("state", "cost_unit", "net_revenue")
    def _compute_margin(self):
        for asset in self:
            asset.net_cost = asset.cost_unit if asset.state == "active" else 0.0
            asset.margin, asset.margin_percent = prices.margin(asset.net_revenue, asset.net_cost)

    def _read_group_select(self, aggregate_spec, query):
        """A group's margin % is its margin over its net revenue, not the average of each
        license's %."""
        if aggregate_spec == "margin_percent:avg":
            margin = self._field_to_sql(self._table, "margin", query)
            revenue = self._field_to_sql(self._table, "net_revenue", query)
            return SQL("COALESCE(100.0 * SUM(%s) / NULLIF(SUM(%s), 0), 0)", margin, revenue)
        return super()._read_group_select(aggregate_spec, query)
