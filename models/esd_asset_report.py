from odoo import api, models

RETURNED_STATES = ("accepted", "done", "external")


class EsdAsset(models.Model):
    """The measures of the license reports: return rate, failure rate and net revenue.

    Stored so that the pivot and graph views aggregate them in SQL: a rate is the average of a
    value that is 100 for a license that counts and 0 for one that does not.
    """

    _inherit = "esd.asset"

    @api.depends("return_state", "token_status", "sync_status", "state", "price_unit")
    def _compute_report_measures(self):
        for asset in self:
            returned = (
                asset.return_state in RETURNED_STATES or asset.token_status == "return_accepted"
            )
            asset.returned_rate = 100.0 if returned else 0.0
            asset.failed_rate = 100.0 if asset.sync_status == "failed" else 0.0
            asset.net_revenue = asset.price_unit if asset.state == "active" else 0.0
