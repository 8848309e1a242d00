import datetime

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import config

from .common import (
    EsdSimulatorCase,
    allow_keys,
    cancel_license,
    office_for_sale,
    secrets_of,
    sell_licenses,
)


@tagged("post_install", "-at_install")
class TestLifecycle(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env, 100.0)
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Contoso Ltd",
                "is_company": True,
                "email": "it@contoso.example",
                "country_id": cls.env.ref("base.us").id,
            }
        )

    def _licenses(self, count=1, partner=None):
        return sell_licenses(self.env, self.office, partner or self.customer, count)

    def _cis_status(self, asset):
        (lic,) = [i for i in self.admin.licenses() if i["licenseId"] == asset.esd_license_id]
        return lic["tokenStatus"]

    # ------------------------------------------------------------------ status
    def test_update_status_applies_redeemed_with_its_date(self):
        asset = self._licenses()
        self.admin.redeem(asset.esd_license_id)
        asset.action_update_license_status()
        self.assertEqual(asset.token_status, "redeemed")
        self.assertTrue(asset.activation_date)
        self.assertIn("Redeemed", asset.message_ids[0].body)

    def test_a_transition_that_is_not_allowed_is_logged_not_applied(self):
        asset = self._licenses()
        self.admin.redeem(asset.esd_license_id)
        asset.action_update_license_status()
        self.admin.force_status(asset.esd_license_id, "Activated")
        asset.action_update_license_status()
        self.assertEqual(asset.token_status, "redeemed")
        self.assertIn("not applied", asset.message_ids[0].body)

    def test_bulk_refresh_uses_one_changes_call(self):
        assets = self._licenses(4)
        for asset in assets[:2]:
            self.admin.redeem(asset.esd_license_id)
        self.instance._esd_client()  # the token is not what we count
        before = self.admin.stats()["requests"]
        self.env["esd.asset"]._cron_refresh_statuses()
        self.assertEqual(self.admin.stats()["requests"] - before, 2)  # the call + stats itself
        self.assertEqual(
            assets.mapped("token_status"), ["redeemed", "redeemed", "activated", "activated"]
        )
        self.assertTrue(self.instance.license_status_synced_at)

    # ------------------------------------------------------------------ cancel and return
    def test_cancel_returns_the_license_and_credits_the_invoice_line(self):
        asset = self._licenses()
        line = asset.invoice_line_id
        action = asset.action_cancel_license()
        self.assertIn("Odoo asks Microsoft now", action["params"]["message"])
        self.assertEqual(asset.lifecycle_state, "return_requested")
        self.env["esd.asset"]._cron_finish_returns()
        self.assertRecordValues(
            asset,
            [
                {
                    "state": "cancelled",
                    "token_status": "return_accepted",
                    "return_status": "successful",
                }
            ],
        )
        credit = asset.credit_note_id
        self.assertEqual(credit.move_type, "out_refund")
        self.assertEqual(credit.state, "posted")
        self.assertEqual(credit.reversed_entry_id, line.move_id)
        self.assertEqual(credit.amount_total, line.price_total)
        self.assertRecordValues(
            asset.sale_line_id, [{"product_uom_qty": 1, "qty_delivered": 0, "qty_invoiced": 0}]
        )
        self.assertEqual(asset.return_state, "done")
        self.assertNotEqual(asset.sale_order_id.invoice_status, "to invoice")
        self.assertEqual(self._cis_status(asset), "ReturnAccepted")

    def test_cancel_of_a_license_redeemed_at_microsoft_is_refused_and_says_why(self):
        asset = self._licenses()
        self.admin.redeem(asset.esd_license_id)  # Odoo does not know yet
        outcome = cancel_license(asset)
        self.assertIn("LicenseRedeemed", outcome)
        self.assertRecordValues(
            asset,
            [{"state": "active", "token_status": "redeemed", "lifecycle_state": "delivered"}],
        )
        self.assertFalse(asset.credit_note_id)
        with self.assertRaisesRegex(UserError, "already redeemed"):
            asset.action_cancel_license()

    def test_cancel_refused_when_not_returnable_or_window_closed(self):
        asset = self._licenses()
        self.office.esd_returnable = False
        with self.assertRaisesRegex(UserError, "not returnable"):
            asset.action_cancel_license()
        self.office.esd_returnable = True
        asset.purchase_date = fields.Date.today() - datetime.timedelta(days=31)
        with self.assertRaisesRegex(UserError, "return window of 30 days closed"):
            asset.action_cancel_license()
        self.assertEqual(asset.state, "active")
        self.assertEqual(self._cis_status(asset), "Activated")

    def test_cancellation_request_withdraw_reject_approve(self):
        asset = self._licenses()
        asset._esd_request_cancellation("Ordered twice", self.customer)
        self.assertEqual(asset.cancel_request_state, "pending")
        self.assertTrue(asset.activity_ids)
        with self.assertRaisesRegex(UserError, "already pending"):
            asset._esd_request_cancellation(None, self.customer)
        asset._esd_withdraw_cancellation()
        self.assertEqual(asset.cancel_request_state, "none")
        self.assertFalse(asset.activity_ids)
        asset._esd_request_cancellation("Please", self.customer)
        asset.action_reject_cancellation()
        self.assertEqual((asset.cancel_request_state, asset.state), ("rejected", "active"))
        asset._esd_request_cancellation("Again", self.customer)
        cancel_license(asset, approve=True)
        self.assertEqual((asset.cancel_request_state, asset.state), ("none", "cancelled"))
        self.assertTrue(asset.credit_note_id)

    def test_resend_queues_another_email(self):
        asset = self._licenses()
        mails = self.env["mail.mail"].search([("subject", "like", f"({asset.name})")])
        asset.action_resend_activation()
        again = self.env["mail.mail"].search([("subject", "like", f"({asset.name})")])
        self.assertEqual(len(again - mails), 1)

    # ------------------------------------------------------------------ delete guard
    def test_a_delivered_license_is_neither_deleted_nor_archived(self):
        """A delivered license is the proof of a sale and still open (issue 29): archiving it
        would hide it from invoicing and reconciliation."""
        asset = self._licenses()
        with self.assertRaisesRegex(UserError, "cannot be deleted"):
            asset.unlink()
        with self.assertRaisesRegex(UserError, "cannot be archived"):
            asset.action_archive()
        self.assertTrue(asset.active)

    def test_only_a_stopped_license_is_deleted_by_managers(self):
        """A license CIS refused is stopped by cancelling its order; then an ESD manager may
        delete it (an ESD user may not). Before that, it is still open."""
        self.admin.faults(fail=5, fail_status=422, paths="orders")
        asset = self._licenses()
        self.assertEqual(asset.sync_status, "failed")
        user = new_test_user(self.env, "esd_plain", groups="microsoft_esd.group_esd_user")
        with self.assertRaisesRegex(AccessError, "Microsoft ESD/Manager"):
            asset.with_user(user).unlink()
        with self.assertRaisesRegex(UserError, "cannot be deleted"):
            asset.unlink()
        asset.sale_order_id._action_cancel()
        self.assertEqual(asset.lifecycle_state, "stopped")
        asset.unlink()
        self.assertFalse(asset.exists())

    # ------------------------------------------------------------------ the key
    def test_key_in_full_for_its_owners_masked_for_everyone_else(self):
        asset = self._licenses()
        key = secrets_of(asset)[0]
        self.assertRegex(asset.token_tail, r"^[A-Z0-9]{5}$")
        masked = "*****-*****-*****-*****-" + key[-5:]
        salesman = new_test_user(self.env, "plain_sales", groups="sales_team.group_sale_salesman")
        esd_user = new_test_user(self.env, "esd_user2", groups="microsoft_esd.group_esd_user")
        portal = new_test_user(self.env, "contoso_portal", groups="base.group_portal")
        portal.partner_id.parent_id = self.customer
        # A login under the customer sees no key until an ESD manager allows it.
        self.assertEqual(asset.with_user(portal).token, masked)
        allow_keys(self.env, portal)
        self.assertTrue(asset.with_user(portal).token == key, "the customer's user sees its key")
        self.assertTrue(asset.with_user(portal).activation_link == secrets_of(asset)[1])
        for user in (salesman, esd_user):
            self.assertEqual(asset.with_user(user).token, masked)
            self.assertFalse(asset.with_user(user).activation_link)
        # Superuser mode adds nothing: the requesting user decides, in a cron (OdooBot) as in a
        # controller working on a sudo'd record for a visitor.
        self.assertEqual(asset.sudo().token, masked)
        public = self.env.ref("base.public_user")
        self.assertEqual(asset.with_user(public).sudo().token, masked)
        self.assertTrue(asset.with_user(portal).sudo().token == key)

    def test_key_encrypted_at_rest_when_configured_and_searchable(self):
        secret = "n3w-Secret-after-rotat1on-0f-the-esd-token-key-77"
        self.patch(config, "options", dict(config.options, esd_token_key=secret))
        asset = self._licenses()
        key = secrets_of(asset)[0]
        stored = asset.sudo().token_sealed
        self.assertTrue(stored.startswith("enc:v2:"))
        self.assertFalse(key in stored, "the key is stored in clear")
        self.env.invalidate_all()
        self.assertTrue(secrets_of(asset)[0] == key)
        found = self.env["esd.asset"].search([("token", "=", key.lower())])
        self.assertEqual(found, asset)
        with self.assertRaisesRegex(UserError, "whole key"):
            self.env["esd.asset"].search([("token", "!=", key)])

    # ------------------------------------------------------------------ partner
    def test_partner_smart_button_lists_its_licenses(self):
        assets = self._licenses(2)
        self.assertEqual(self.customer.esd_asset_count, 2)
        action = self.customer.action_view_esd_assets()
        self.assertEqual(self.env["esd.asset"].search(action["domain"]), assets)

    # ------------------------------------------------------------------ reconciliation
    def test_reconciliation_finds_and_fixes_the_differences(self):
        redeemed, returned, fine = self._licenses(3)
        self.admin.redeem(redeemed.esd_license_id)
        self.admin.force_status(returned.esd_license_id, "ReturnAccepted", "Successful")
        self.admin.faults(fail=5, fail_status=422, paths="orders")
        failed = self._licenses()
        self.admin.clear_faults()
        wizard = self.env["esd.reconciliation"].create(
            {"instance_ids": [Command.set(self.instance.ids)]}
        )
        wizard.action_run()
        found = {(line.asset_id, line.kind) for line in wizard.line_ids}
        self.assertIn((redeemed, "status_differs"), found)
        self.assertIn((returned, "returned_not_credited"), found)
        self.assertIn((failed, "failed_locally"), found)
        self.assertNotIn(fine, wizard.line_ids.asset_id)
        wizard.line_ids.filtered(lambda line: line.asset_id == redeemed).action_apply_cis_status()
        self.assertEqual(redeemed.token_status, "redeemed")
        wizard.action_run()
        self.assertNotIn(redeemed, wizard.line_ids.asset_id)
