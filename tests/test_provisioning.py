from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import new_test_user, tagged

from .common import EsdSimulatorCase, outgoing_body, secrets_of

OFFICE = "EP2-06606:en-US"
VISIO = "D86-05998:en-US"


@tagged("post_install", "-at_install")
class TestProvisioning(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        Product = cls.env["product.template"].with_context(active_test=False)
        cls.office = Product.search([("esd_product_id", "=", OFFICE)])
        cls.visio = Product.search([("esd_product_id", "=", VISIO)])
        (cls.office | cls.visio).write({"list_price": 200.0})
        (cls.office | cls.visio).action_esd_activate_for_sale()
        us = cls.env.ref("base.us")
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Contoso Ltd",
                "is_company": True,
                "email": "it@contoso.example",
                "country_id": us.id,
            }
        )
        cls.reseller = cls.env["res.partner"].create(
            {
                "name": "Fabrikam Reseller",
                "is_company": True,
                "email": "sales@fabrikam.example",
                "country_id": us.id,
                "esd_role": "reseller",
            }
        )
        cls.end_customer = cls.env["res.partner"].create(
            {
                "name": "Northwind Traders",
                "is_company": True,
                "email": "admin@northwind.example",
                "country_id": us.id,
            }
        )
        cls.tax = cls.env["account.tax"].create(
            {"name": "VAT 10%", "amount": 10.0, "type_tax_use": "sale"}
        )

    def _order(self, partner, lines, end_customer=None, discount=0.0):
        return self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "esd_end_customer_id": end_customer and end_customer.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": product.product_variant_id.id,
                            "product_uom_qty": qty,
                            "discount": discount,
                            "tax_id": [Command.set(self.tax.ids)],
                        }
                    )
                    for product, qty in lines
                ],
            }
        )

    def _provision(self):
        """What the two crons do: provision (and invoice), then send the license emails."""
        done = self.env["esd.asset"]._esd_provision_pending()
        self.env["esd.asset"]._esd_send_pending_welcome()
        return done

    def _welcome_mails(self, asset):
        return self.env["mail.mail"].search([("subject", "like", f"({asset.name})")])

    def _assert_key_only_in_the_email(self, asset):
        """The key is in the email as it leaves, never in what is stored: the queued email, its
        message, the chatter (and never in test output)."""
        (mail,) = self._welcome_mails(asset)
        token, link = secrets_of(asset)
        sent = outgoing_body(mail)
        self.assertTrue(token in sent, "the email carries the license key")
        self.assertTrue(link in sent)
        self.assertFalse(token in mail.body_html or link in mail.body_html, "a stored key")
        self.assertFalse(token in (mail.mail_message_id.body or ""), "a stored key")
        self.assertEqual(mail.esd_asset_id, asset)
        self.assertEqual(mail.state, "outgoing")  # queued, not sent inside provisioning
        # Removed by the license email job once sent, after it recorded the outcome.
        self.assertFalse(mail.auto_delete)
        self.assertFalse(mail.model or mail.res_id, "the email is not a chatter message")
        leaks = asset.message_ids.filtered(lambda m: token in (m.body or ""))
        self.assertFalse(leaks, "the license key appears in the chatter")
        self.assertEqual(asset.mail_state, "queued")
        return mail

    def test_quantity_three_is_three_licenses_three_emails_one_invoice(self):
        order = self._order(self.customer, [(self.office, 3)], discount=10.0)
        order.action_confirm()
        self.assertEqual(order.order_line.mapped("product_uom_qty"), [1.0, 1.0, 1.0])
        self.assertEqual(set(order.order_line.mapped("discount")), {10.0})
        self.assertEqual(order.order_line.tax_id, self.tax)
        self.assertEqual(order.amount_untaxed, 540.0)
        assets = order.esd_asset_ids
        self.assertEqual(len(assets), 3)
        self.assertEqual(set(assets.mapped("sync_status")), {"unsynchronised"})
        self.assertEqual(len(set(assets.mapped("request_id"))), 3)
        # Confirming does not order: the cron is triggered for that.
        trigger = self.env["ir.cron.trigger"].search(
            [("cron_id", "=", self.env.ref("microsoft_esd.ir_cron_esd_provision").id)]
        )
        self.assertTrue(trigger)

        self.assertEqual(self._provision(), 3)
        self.assertEqual(set(assets.mapped("sync_status")), {"synchronized"})
        self.assertEqual(len({secrets_of(asset)[0] for asset in assets}), 3)
        self.assertEqual(set(assets.mapped("token_status")), {"activated"})
        self.assertEqual(set(assets.mapped("price_unit")), {180.0})
        self.assertEqual(order.order_line.mapped("qty_delivered"), [1.0, 1.0, 1.0])
        for asset in assets:
            mail = self._assert_key_only_in_the_email(asset)
            self.assertEqual(mail.email_to, self.customer.email_formatted)
        invoice = assets.invoice_id
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(len(invoice.invoice_line_ids), 3)
        self.assertEqual(set(invoice.invoice_line_ids.mapped("quantity")), {1.0})
        self.assertEqual(invoice.amount_untaxed, 540.0)
        self.assertEqual(invoice.amount_total, 594.0)
        self.assertEqual(order.invoice_status, "invoiced")
        # A second run finds nothing to do and writes nothing twice.
        self.assertEqual(self._provision(), 0)
        self.assertEqual(len(order.invoice_ids), 1)

    def test_reseller_orders_for_an_end_customer(self):
        order = self._order(self.reseller, [(self.office, 1)], end_customer=self.end_customer)
        order.action_confirm()
        self._provision()
        asset = order.esd_asset_ids
        self.assertEqual(asset.customer_id, self.end_customer)
        self.assertEqual(asset.billing_partner_id, self.reseller)
        self.assertEqual(asset.sync_status, "synchronized")
        self.assertEqual(self.reseller._esd_account(self.instance).role, "reseller")
        self.assertEqual(self.end_customer._esd_account(self.instance).role, "user")
        self.assertEqual(asset.invoice_id.partner_id, self.reseller)
        mail = self._assert_key_only_in_the_email(asset)
        self.assertEqual(mail.email_to, self.end_customer.email_formatted)

    def test_extra_recipients_receive_the_license_email(self):
        msp = self.env["res.partner"].create({"name": "Managed IT", "email": "noc@msp.example"})
        self.instance.extra_recipient_ids = msp
        self.instance.state = "connected"
        order = self._order(self.customer, [(self.office, 1)])
        order.action_confirm()
        self._provision()
        mail = self._assert_key_only_in_the_email(order.esd_asset_ids)
        self.assertEqual(mail.email_to, f"{self.customer.email_formatted}, {msp.email_formatted}")
        # One message per address: neither sees the other's.
        self.assertEqual(
            [email["email_to"] for email in mail._prepare_outgoing_list()],
            [[self.customer.email_formatted], [msp.email_formatted]],
        )

    def test_second_license_fails_then_retry_delivers_and_invoices_it(self):
        self.env["ir.config_parameter"].set_param("microsoft_esd.parallelism", "1")
        order = self._order(self.customer, [(self.office, 3)])
        order.action_confirm()
        self.admin.faults(fail=1, fail_skip=1, fail_status=422, paths="orders")
        self._provision()
        assets = order.esd_asset_ids.sorted("id")
        self.assertEqual(assets.mapped("sync_status"), ["synchronized", "failed", "synchronized"])
        failed = assets[1]
        self.assertIn("injected failure", failed.sync_error)
        self.assertEqual(failed.activity_ids.user_id, order.user_id)
        first_invoice = order.invoice_ids
        self.assertEqual(len(first_invoice.invoice_line_ids), 2)
        self.assertFalse(failed.invoice_line_id)

        failed.action_retry_provisioning()
        self.assertFalse(failed.activity_ids)
        self._provision()
        self.assertEqual(failed.sync_status, "synchronized")
        follow_up = order.invoice_ids - first_invoice
        self.assertEqual(len(follow_up), 1)
        self.assertEqual(len(follow_up.invoice_line_ids), 1)
        self.assertEqual(failed.invoice_id, follow_up)

    def test_transient_errors_wait_and_do_not_invoice(self):
        order = self._order(self.customer, [(self.office, 1)])
        order.action_confirm()
        self.admin.faults(fail=50, fail_status=503, paths="orders")
        self._provision()
        asset = order.esd_asset_ids
        self.assertEqual(asset.sync_status, "unsynchronised")
        self.assertEqual(asset.sync_attempts, 1)
        self.assertTrue(asset.next_attempt_at)
        self.assertIn("503", asset.sync_error)
        self.assertFalse(order.invoice_ids)
        self.assertEqual(self._provision(), 0)  # not due yet

    def test_an_outage_longer_than_the_old_quarter_hour_heals_by_itself(self):
        """CIS down for hours: the license keeps waiting ("Being prepared"), and is delivered
        and invoiced once CIS answers; only past the retry window does it fail. Time is moved,
        not waited."""
        order = self._order(self.customer, [(self.office, 2)])
        order.action_confirm()
        self.admin.faults(fail=1000, fail_status=503, paths="orders")
        self._provision()
        assets = order.esd_asset_ids
        first = assets.mapped("first_transient_error_at")
        self.assertTrue(all(first))

        def later(hours):
            now = fields.Datetime.now()
            assets.sudo().write(
                {
                    # before the test transaction began: the claim compares with its now()
                    "next_attempt_at": fields.Datetime.subtract(now, days=1),
                    "first_transient_error_at": fields.Datetime.subtract(now, hours=hours),
                }
            )
            self._provision()

        for hours in (0.34, 2, 23):  # 20 minutes (the old limit), 2 hours, 23 hours
            later(hours)
            self.assertEqual(set(assets.mapped("sync_status")), {"unsynchronised"}, hours)
            self.assertTrue(order._esd_licenses_pending(), "the customer reads Being prepared")
        self.assertGreaterEqual(min(assets.mapped("sync_attempts")), 4)
        self.assertFalse(assets.activity_ids, "nobody is asked to act during an outage")
        # CIS answers again: delivered, one invoice, no click.
        self.admin.clear_faults()
        later(23.5)
        self.assertEqual(set(assets.mapped("sync_status")), {"synchronized"})
        self.assertEqual(len(order.invoice_ids), 1)
        self.assertFalse(any(assets.mapped("first_transient_error_at")))

    def test_past_the_retry_window_a_license_fails_and_is_retried_per_instance(self):
        self.env["ir.config_parameter"].set_param("microsoft_esd.retry_window_hours", "1")
        order = self._order(self.customer, [(self.office, 1)])
        order.action_confirm()
        self.admin.faults(fail=1000, fail_status=503, paths="orders")
        self._provision()
        asset = order.esd_asset_ids
        now = fields.Datetime.now()
        asset.sudo().write(
            {
                # before the test transaction began: the claim compares with its now()
                "next_attempt_at": fields.Datetime.subtract(now, days=1),
                "first_transient_error_at": fields.Datetime.subtract(now, hours=2),
            }
        )
        self._provision()
        self.assertEqual(asset.sync_status, "failed")
        self.assertIn("503", asset.sudo().sync_error)
        self.assertTrue(asset.activity_ids)
        self.admin.clear_faults()
        user = new_test_user(self.env, "esd_retry", groups="microsoft_esd.group_esd_user")
        self.instance.with_user(user).action_retry_failed_licenses()
        self._provision()
        self.assertEqual(asset.sync_status, "synchronized")
        with self.assertRaisesRegex(UserError, "No license of"):
            self.instance.with_user(user).action_retry_failed_licenses()

    def test_dropped_connection_after_commit_gives_no_second_token(self):
        order = self._order(self.customer, [(self.office, 1)])
        order.action_confirm()
        asset = order.esd_asset_ids
        before = self.admin.stats()["licenses"]
        self.admin.faults(drop_after_commit=1, paths="orders")
        self._provision()
        self.assertEqual(asset.sync_status, "synchronized")
        self.assertEqual(self.admin.stats()["licenses"], before + 1)

    def test_crash_after_cis_ordered_but_before_commit_gives_the_same_token(self):
        order = self._order(self.customer, [(self.office, 1)])
        order.action_confirm()
        asset = order.esd_asset_ids
        # A worker ordered the license, then died before its transaction committed.
        self.assertEqual(asset._esd_sync_accounts(), asset)
        job = asset._esd_job()
        with self.instance._cis_client() as client:
            lost = client.order_license(
                job.product_id,
                job.customer_account_id,
                job.reseller_account_id,
                job.external_reference,
                request_id=job.request_id,
            ).licenses[0]
        before = self.admin.stats()["licenses"]
        self._provision()
        self.assertEqual(asset.esd_license_id, lost.license_id)
        self.assertTrue(secrets_of(asset)[0] == lost.token, "the same key, not a second one")
        self.assertEqual(self.admin.stats()["licenses"], before)

    def test_licenses_take_consecutive_references_from_their_sequence(self):
        sequence = self.env.ref("microsoft_esd.seq_esd_asset")
        order = self._order(self.customer, [(self.office, 4)])
        order.action_confirm()
        names = order.esd_asset_ids.sorted("id").mapped("name")
        self.assertEqual(len(set(names)), 4)
        numbers = [int(name.rsplit("/", 1)[1]) for name in names]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + 4)))
        self.assertEqual(names[0], sequence.get_next_char(numbers[0]))
        # A sequence changed to another kind (no gap) is drawn license by license, as Odoo does.
        sequence.write({"implementation": "no_gap", "number_next": 90000})
        again = self._order(self.customer, [(self.office, 2)])
        again.action_confirm()
        later = [int(name.rsplit("/", 1)[1]) for name in again.esd_asset_ids.mapped("name")]
        self.assertEqual(sorted(later), [90000, 90001])

    def test_confirming_again_creates_only_missing_licenses(self):
        order = self._order(self.customer, [(self.office, 2)])
        order.action_confirm()
        self.assertEqual(len(order.esd_asset_ids), 2)
        self.assertFalse(order._esd_create_assets())

    def test_unsyncable_partner_stops_confirmation_with_a_clear_message(self):
        nobody = self.env["res.partner"].create({"name": "No Mail Inc", "is_company": True})
        order = self._order(nobody, [(self.office, 1)])
        with self.assertRaisesRegex(UserError, "No Mail Inc needs a valid Microsoft contact email"):
            order.action_confirm()
        self.assertEqual(order.state, "draft")
        self.assertFalse(order.esd_asset_ids)

    def test_fractional_quantity_and_discontinued_product_are_refused(self):
        order = self._order(self.customer, [(self.office, 1.5)])
        with self.assertRaisesRegex(UserError, "whole quantity"):
            order.action_confirm()
        self.office.esd_catalog_status = "discontinued"
        order = self._order(self.customer, [(self.office, 1)])
        with self.assertRaisesRegex(UserError, "can no longer be ordered"):
            order.action_confirm()

    def test_sync_options_wizard_enforces_the_rules(self):
        contact = self.env["res.partner"].create(
            {"name": "Jane", "parent_id": self.customer.id, "email": "jane@contoso.example"}
        )
        wizard = (
            self.env["esd.partner.sync.wizard"]
            .with_context(default_partner_id=contact.id)
            .create({})
        )
        self.assertTrue(wizard.has_parent)
        with self.assertRaisesRegex(UserError, "synchronize the company Contoso Ltd instead"):
            wizard.action_save_and_sync()
        wizard = (
            self.env["esd.partner.sync.wizard"]
            .with_context(default_partner_id=self.end_customer.id)
            .create({"email": "not-an-email"})
        )
        with self.assertRaisesRegex(UserError, "valid Microsoft contact email"):
            wizard.action_save_and_sync()
        wizard.email = "licensing@northwind.example"
        wizard.role = "user"
        wizard.action_save_and_sync()
        account = self.end_customer._esd_account(self.instance)
        self.assertEqual((account.sync_status, account.role), ("synchronized", "user"))
        self.assertTrue(account.account_id)
        self.assertEqual(self.end_customer.esd_email, "licensing@northwind.example")
        self.assertEqual(self.end_customer.esd_sync_status, "synchronized")

    def test_the_idempotency_key_never_changes(self):
        order = self._order(self.customer, [(self.office, 1)])
        order.action_confirm()
        with self.assertRaisesRegex(UserError, "never changes"):
            order.esd_asset_ids.write({"request_id": "other"})

    # ------------------------------------------------------------------ sale's hooks
    def test_a_forms_default_keys_are_not_defaults_of_the_licenses(self):
        """Confirming from a view whose context carries default_* keys (as a form's does)
        creates licenses from the order alone."""
        order = self._order(self.customer, [(self.office, 2)])
        order.with_context(
            default_return_state="done",
            default_token_status="redeemed",
            default_welcome_pending=True,
            default_state="cancelled",
        ).action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertRecordValues(
            order.esd_asset_ids,
            [
                {
                    "state": "active",
                    "return_state": "none",
                    "token_status": False,
                    "welcome_pending": False,
                    "lifecycle_state": "to_order",
                }
            ]
            * 2,
        )

    def test_the_license_price_is_the_lines_price_without_taxes_when_taxes_are_included(self):
        included = self.env["account.tax"].create(
            {
                "name": "VAT 20% included",
                "amount": 20.0,
                "type_tax_use": "sale",
                "price_include_override": "tax_included",
            }
        )
        order = self._order(self.customer, [(self.office, 2)], discount=10.0)
        order.order_line.write({"price_unit": 120.0, "tax_id": [Command.set(included.ids)]})
        order.action_confirm()
        # 120 tax included = 100 without the tax; less 10 % = 90, what the invoice line will say.
        self.assertEqual(order.esd_asset_ids.mapped("price_unit"), [90.0, 90.0])
        self.assertEqual(order.order_line.mapped("price_subtotal"), [90.0, 90.0])

    def test_the_license_emails_wake_the_mail_queue(self):
        """The welcome emails are queued: Odoo's mail queue runs hourly unless woken, so the key
        would wait up to an hour. Queuing them triggers the queue now."""
        order = self._order(self.customer, [(self.office, 2)])
        order.action_confirm()
        self.env["esd.asset"]._esd_provision_pending()
        queue = self.env.ref("mail.ir_cron_mail_scheduler_action")
        Trigger = self.env["ir.cron.trigger"].sudo()
        before = Trigger.search([("cron_id", "=", queue.id)])
        self.env["esd.asset"]._esd_send_pending_welcome()
        woken = Trigger.search([("cron_id", "=", queue.id)]) - before
        self.assertTrue(woken)
        self.assertLessEqual(max(woken.mapped("call_at")), fields.Datetime.now())
        self.assertEqual(len(order.esd_asset_ids.mapped(self._welcome_mails)), 2)
