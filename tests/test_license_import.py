"""Taking over a channel's licenses sold outside Odoo (made here with ``esd order``)."""

import contextlib
import io
import json
import tempfile

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from odoo.addons.microsoft_esd.microsoft_esd import cli
from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient, Simulator
from odoo.addons.microsoft_esd.models import esd_instance

from .common import (
    EsdSimulatorCase,
    cancel_license,
    customer_company,
    office_for_sale,
    secrets_of,
    sell_licenses,
)

OFFICE = "EP2-06606:en-US"
WINDOWS = "FQC-10572:en-US"


@tagged("post_install", "-at_install")
class TestLicenseImport(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env)
        cls.contoso = customer_company(cls.env, "Contoso Ltd", esd_role="user")
        cls.manager = new_test_user(
            cls.env, "import_manager", groups="microsoft_esd.group_esd_manager"
        )
        cls.esd_user = new_test_user(cls.env, "import_user", groups="microsoft_esd.group_esd_user")

    def setUp(self):
        """A channel of its own per test: what CIS knows is every license it ever sold."""
        super().setUp()
        state = tempfile.TemporaryDirectory(prefix="esd-sim-")
        self.addCleanup(state.cleanup)
        self.channel = Simulator(state.name).start()
        self.addCleanup(self.channel.stop)
        self.admin = AdminClient(InstanceConfig.from_file(self.channel.config_path))
        self.instance.write(self.instance._esd_values_from_simulator(self.channel.config_path))
        # The shared clients are keyed by write_date, the same all along a test class's
        # transaction: drop the one of the previous test's channel.
        with esd_instance._CLIENTS_LOCK:
            for key in [k for k in esd_instance._CLIENTS if k[1] == self.instance.id]:
                esd_instance._CLIENTS.pop(key).close()
        self.instance.action_test_connection()

    # ------------------------------------------------------------------ helpers
    def esd(self, *args):
        """Run the ``esd`` command line against the simulator; its JSON answer (never printed:
        it holds keys)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = cli.main(["--config", str(self.channel.config_path), *args, "--json"])
        self.assertEqual(code, 0, "esd failed")
        return json.loads(out.getvalue())

    def cis_account(self, role, name, email):
        return self.esd("account", "--role", role, "--name", name, "--email", email)["accountId"]

    def order_outside(self, customer, reseller=None, product=OFFICE):
        args = ["order", "--product", product, "--customer", customer]
        if reseller:
            args += ["--reseller", reseller]
        return self.esd(*args)["licenses"][0]

    def run_import(self, user=None):
        wizard = (
            self.env["esd.license.import"]
            .with_user(user or self.manager)
            .create({"instance_id": self.instance.id})
        )
        wizard.action_import()
        return wizard.sudo()

    def sold_outside(self):
        """A channel's history before Odoo: a license for a customer Odoo knows (its account
        synced by an Odoo sale), two through a reseller Odoo does not know for a new customer,
        one redeemed, one returned."""
        odoo_sold = sell_licenses(self.env, self.office, self.contoso)
        contoso_account = self.contoso.esd_account_ids.account_id
        reseller = self.cis_account("reseller", "Litware Reseller", "sales@litware.example")
        customer = self.cis_account("user", "Tailspin Toys", "it@tailspin.example")
        licenses = {
            "contoso": self.order_outside(contoso_account),
            "resold": self.order_outside(customer, reseller),
            "redeemed": self.order_outside(customer, reseller, WINDOWS),
            "returned": self.order_outside(contoso_account),
        }
        self.admin.redeem(licenses["redeemed"]["licenseId"])
        self.esd("return", licenses["returned"]["licenseId"])
        return odoo_sold, licenses, reseller, customer

    def imported(self, lic):
        return self.env["esd.asset"].search([("esd_license_id", "=", lic["licenseId"])])

    # ------------------------------------------------------------------ the tests
    def test_import_matches_creates_and_marks_the_licenses_imported(self):
        odoo_sold, licenses, reseller_account, customer_account = self.sold_outside()
        wizard = self.run_import()
        self.assertRecordValues(
            wizard,
            [
                {
                    "done": True,
                    "imported_count": 3,
                    "matched_count": 1,
                    "created_count": 2,
                    "known_count": 1,
                    "returned_count": 1,
                    "skipped_count": 2,
                }
            ],
        )
        self.assertIn(licenses["returned"]["licenseId"], wizard.skipped_details)
        self.assertIn(
            "Licenses imported: 3. Partners matched: 1, created: 2. Licenses skipped: 2",
            wizard.summary,
        )

        # Matched by its CIS account; the others created as imported companies with theirs.
        self.assertEqual(wizard.matched_partner_ids, self.contoso)
        tag = self.env.ref("microsoft_esd.res_partner_category_esd_imported")
        reseller = wizard.created_partner_ids.filtered(lambda p: p.esd_role == "reseller")
        customer = wizard.created_partner_ids - reseller
        self.assertRecordValues(
            reseller | customer,
            [
                {"name": "Litware Reseller", "is_company": True, "email": "sales@litware.example"},
                {"name": "Tailspin Toys", "is_company": True, "email": "it@tailspin.example"},
            ],
        )
        self.assertEqual((reseller | customer).category_id, tag)
        self.assertEqual(reseller.esd_account_ids.account_id, reseller_account)
        self.assertEqual(customer.esd_account_ids.account_id, customer_account)
        self.assertEqual(customer.esd_account_ids.sync_status, "synchronized")

        contoso_lic = self.imported(licenses["contoso"])
        resold = self.imported(licenses["resold"])
        redeemed = self.imported(licenses["redeemed"])
        self.assertEqual(wizard.asset_ids, contoso_lic | resold | redeemed)
        self.assertRecordValues(
            contoso_lic | resold | redeemed,
            [
                {
                    "imported": True,
                    "customer_id": self.contoso.id,
                    "billing_partner_id": self.contoso.id,
                    "token_status": "activated",
                    "state": "active",
                    "sync_status": "synchronized",
                },
                {
                    "imported": True,
                    "customer_id": customer.id,
                    "billing_partner_id": reseller.id,
                    "token_status": "activated",
                    "state": "active",
                    "sync_status": "synchronized",
                },
                {
                    "imported": True,
                    "customer_id": customer.id,
                    "billing_partner_id": reseller.id,
                    "token_status": "redeemed",
                    "state": "active",
                    "sync_status": "synchronized",
                },
            ],
        )
        for asset in wizard.asset_ids:
            self.assertFalse(asset.sale_order_id)
            self.assertFalse(asset.sale_line_id)
            self.assertEqual(asset.company_id, self.instance.company_id)
            self.assertTrue(asset.purchase_date)
            self.assertTrue(asset.esd_order_id)
        self.assertTrue(redeemed.activation_date)
        self.assertEqual(resold.product_id.product_tmpl_id, self.office)
        # The key sealed like any other: readable by Odoo's code, masked on the record.
        token, link = secrets_of(resold)
        self.assertTrue(token == licenses["resold"]["token"], "the key was sealed as sold")
        self.assertTrue(link == licenses["resold"]["activationLink"])
        self.assertEqual(resold.token_tail, licenses["resold"]["token"][-5:])
        self.assertFalse(licenses["resold"]["token"] in (resold.token or ""), "masked")
        # The chatter says it was imported, never with the key.
        note = resold.message_ids[:1].body
        self.assertIn("Imported from Microsoft CIS", note)
        self.assertFalse(licenses["resold"]["token"] in note, "no key in the chatter")
        self.assertNotIn(odoo_sold, wizard.asset_ids)

    def test_the_import_sends_orders_and_bills_nothing(self):
        self.sold_outside()
        Move, Mail = self.env["account.move"], self.env["mail.mail"]
        moves, mails = Move.search_count([]), Mail.search_count([])
        orders = self.admin.stats()["orders"]
        wizard = self.run_import()
        self.assertEqual(wizard.imported_count, 3)
        # What the crons run next: no email queued, nothing invoiced, nothing ordered.
        self.env["esd.asset"]._esd_send_pending_welcome()
        self.env["sale.order"]._esd_invoice_ready()
        self.assertEqual(Mail.search_count([]), mails, "no email")
        self.assertFalse(Mail.search([("esd_asset_id", "in", wizard.asset_ids.ids)]))
        self.assertEqual(Move.search_count([]), moves, "no invoice")
        self.assertEqual(self.admin.stats()["orders"], orders, "no CIS order")
        self.assertFalse(wizard.asset_ids.filtered("welcome_pending"))
        self.assertFalse(wizard.asset_ids.invoice_line_id)

    def test_a_second_run_imports_nothing(self):
        self.sold_outside()
        first = self.run_import()
        partners = self.env["res.partner"].search_count([])
        second = self.run_import()
        self.assertRecordValues(
            second,
            [{"imported_count": 0, "created_count": 0, "matched_count": 0, "known_count": 4}],
        )
        self.assertEqual(self.env["res.partner"].search_count([]), partners)
        self.assertEqual(
            self.env["esd.asset"].search_count([("imported", "=", True)]), first.imported_count
        )
        # A license sold outside since is the only one the next run takes.
        customer = first.created_partner_ids.filtered(lambda p: p.esd_role == "user")
        later = self.order_outside(customer.esd_account_ids.account_id)
        third = self.run_import()
        self.assertEqual(third.asset_ids, self.imported(later))
        self.assertEqual(third.matched_partner_ids, customer)
        self.assertFalse(third.created_partner_ids)

    def test_imported_licenses_are_refreshed_and_returned_without_a_credit_note(self):
        _odoo_sold, licenses, _reseller, _customer = self.sold_outside()
        self.run_import()
        resold, contoso_lic = self.imported(licenses["resold"]), self.imported(licenses["contoso"])
        # Status refreshed by the usual cron.
        self.admin.redeem(licenses["resold"]["licenseId"])
        self.instance.license_status_synced_at = False
        self.env["esd.asset"]._cron_refresh_statuses()
        self.assertEqual(resold.token_status, "redeemed")
        # Returned under the usual rules; no invoice, so no credit note.
        cancel_license(contoso_lic)
        self.assertRecordValues(
            contoso_lic,
            [{"state": "cancelled", "token_status": "return_accepted", "return_state": "done"}],
        )
        self.assertFalse(contoso_lic.credit_note_id)
        self.assertTrue(any("not invoiced" in m.body for m in contoso_lic.message_ids))

    def test_reconciliation_sees_them_unknown_then_nothing_once_imported(self):
        self.sold_outside()

        def reconcile():
            wizard = self.env["esd.reconciliation"].create(
                {"instance_ids": [(6, 0, self.instance.ids)]}
            )
            wizard.action_run()
            return wizard

        # Three licenses at CIS are not in Odoo (the returned one is nothing to take over).
        self.assertEqual(reconcile().unknown_to_odoo_count, 3)
        imported = self.run_import().asset_ids
        after = reconcile()
        self.assertEqual(after.unknown_to_odoo_count, 0)
        self.assertFalse(after.line_ids.filtered(lambda f: f.asset_id in imported))

    def test_only_esd_managers_import_and_a_refusal_changes_nothing(self):
        self.sold_outside()
        calls = self.admin.stats()["cis_requests"]
        wizard = self.env["esd.license.import"].create({"instance_id": self.instance.id})
        with self.assertRaises(AccessError):
            wizard.with_user(self.esd_user).action_import()
        self.assertEqual(self.admin.stats()["cis_requests"], calls, "CIS was not called")
        self.assertFalse(self.env["esd.asset"].search([("imported", "=", True)]))

    def test_a_cis_error_changes_nothing_and_says_why(self):
        self.sold_outside()
        partners = self.env["res.partner"].search_count([])
        self.admin.faults(fail=1, fail_status=403, paths="accounts/")
        with self.assertRaisesRegex(UserError, "CIS refused"):
            self.run_import()
        self.assertFalse(self.env["esd.asset"].search([("imported", "=", True)]))
        self.assertEqual(self.env["res.partner"].search_count([]), partners)

    def test_a_license_without_an_odoo_sale_must_be_imported(self):
        (asset,) = sell_licenses(self.env, self.office, self.contoso)
        with self.assertRaisesRegex(UserError, "sold on an order"):
            asset.sudo().write({"sale_order_id": False})
