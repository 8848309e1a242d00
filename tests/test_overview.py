"""The ESD overview and the license reports: their numbers and the lists they open."""

import datetime

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged

from .common import (
    EsdSimulatorCase,
    cancel_license,
    customer_company,
    office_for_sale,
    sell_licenses,
)


@tagged("post_install", "-at_install")
class TestOverview(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env, price=100.0)
        cls.contoso = customer_company(cls.env, "Contoso Ltd")
        cls.esd_user = new_test_user(
            cls.env, "overview_user", groups="microsoft_esd.group_esd_user"
        )

    def _open(self, key):
        action = (
            self.instance.with_user(self.esd_user)
            .with_context(esd_overview=key)
            .action_esd_overview_open()
        )
        return self.env["esd.asset"].search(action["domain"])

    def test_each_number_counts_the_licenses_its_list_shows(self):
        delivered = sell_licenses(self.env, self.office, self.contoso, 3)
        self.admin.faults(fail=1, fail_status=422, paths="orders")
        failed = sell_licenses(self.env, self.office, self.contoso)
        self.admin.clear_faults()
        cancel_license(delivered[0])  # returned and credited: no longer to do
        delivered[1]._esd_request_cancellation("wrong product", self.contoso)
        self.admin.force_status(delivered[2].esd_license_id, "ReturnAccepted", "Successful")
        delivered[2].action_update_license_status()  # returned at Microsoft: to credit

        instance = self.instance.with_user(self.esd_user)
        self.assertRecordValues(
            instance,
            [
                {
                    "overview_pending_count": 0,
                    "overview_failed_count": 1,
                    "overview_cancel_requests_count": 1,
                    "overview_to_credit_count": 1,
                    "overview_not_invoiced_count": 0,
                    "overview_findings_count": 2,
                    "overview_sold_month_count": 4,
                    # net of returns: the two returned licenses count for nothing; the failed
                    # one is sold, its delivery waits
                    "overview_sold_month_amount": 200.0,
                }
            ],
        )
        self.assertEqual(self._open("failed"), failed)
        self.assertEqual(self._open("cancel_requests"), delivered[1])
        self.assertEqual(self._open("to_credit"), delivered[2])
        self.assertEqual(self._open("findings"), failed | delivered[2])
        self.assertEqual(self._open("sold_month"), delivered | failed)
        self.assertFalse(self._open("pending"))

    def test_sales_of_earlier_months_are_not_this_months(self):
        (asset,) = sell_licenses(self.env, self.office, self.contoso)
        first = fields.Date.context_today(asset).replace(day=1)
        asset.sudo().purchase_date = first - datetime.timedelta(days=1)
        self.assertEqual(self.instance.overview_sold_month_count, 0)
        self.assertFalse(self._open("sold_month"))

    def test_an_unknown_list_and_a_stranger_are_refused(self):
        with self.assertRaisesRegex(Exception, "no list called"):
            self.instance.with_context(esd_overview="everything").action_esd_overview_open()
        salesman = new_test_user(
            self.env, "overview_sales", groups="sales_team.group_sale_salesman"
        )
        with self.assertRaises(AccessError):
            self.instance.with_user(salesman).with_context(
                esd_overview="failed"
            ).action_esd_overview_open()

    def test_report_measures_rates_and_net_revenue(self):
        assets = sell_licenses(self.env, self.office, self.contoso, 4)
        cancel_license(assets[0])
        groups = self.env["esd.asset"]._read_group(
            [("id", "in", assets.ids)],
            [],
            ["__count", "returned_rate:avg", "failed_rate:avg", "net_revenue:sum"],
        )
        self.assertEqual(groups, [(4, 25.0, 0.0, 300.0)])
