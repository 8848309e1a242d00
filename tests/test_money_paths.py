"""Money paths that survive every failure: invoices, returns and credit notes, CIS accounts.

Each test is a failure a user met: a locked order, a return whose answer was lost, a return
made at Microsoft outside Odoo, an account created twice after a lost answer, one bad license
in a batch, one order that cannot be invoiced next to one that can.
"""

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from .common import (
    EsdSimulatorCase,
    cancel_license,
    finish_returns,
    office_for_sale,
    outgoing_body,
    paid_order,
    secrets_of,
    sell_licenses,
    send_license_emails,
)


@tagged("post_install", "-at_install")
class TestMoneyPaths(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env, 100.0)
        cls.tax = cls.env["account.tax"].create(
            {"name": "VAT 20%", "amount": 20.0, "type_tax_use": "sale"}
        )
        cls.office.taxes_id = cls.tax
        us = cls.env.ref("base.us")

        def company(name, email):
            return cls.env["res.partner"].create(
                {"name": name, "is_company": True, "email": email, "country_id": us.id}
            )

        cls.customer = company("Contoso Ltd", "it@contoso.example")
        cls.other = company("Northwind Traders", "it@northwind.example")

    def _licenses(self, count=1, partner=None):
        return sell_licenses(self.env, self.office, partner or self.customer, count)

    def _cis(self, asset):
        (lic,) = [i for i in self.admin.licenses() if i["licenseId"] == asset.esd_license_id]
        return lic["tokenStatus"]

    def _credits(self, asset):
        return asset.sale_line_id.invoice_lines.filtered(
            lambda line: line.move_id.move_type == "out_refund"
        )

    def _assert_returned_and_credited_once(self, asset, invoice_line):
        self.assertRecordValues(
            asset,
            [
                {
                    "state": "cancelled",
                    "token_status": "return_accepted",
                    "return_status": "successful",
                    "return_state": "done",
                }
            ],
        )
        self.assertEqual(self._cis(asset), "ReturnAccepted")
        credit_line = self._credits(asset)
        self.assertEqual(len(credit_line), 1, "credited exactly once")
        self.assertEqual(credit_line.move_id.state, "posted")
        self.assertEqual(credit_line.move_id.reversed_entry_id, invoice_line.move_id)
        self.assertEqual(credit_line.price_total, invoice_line.price_total)
        self.assertEqual(asset.sale_line_id.qty_delivered, 0)
        self.assertEqual(asset.sale_line_id.qty_invoiced, 0)
        self.assertEqual(asset.sale_line_id.qty_to_invoice, 0)

    # ------------------------------------------------------------------ invoicing
    def test_invoiced_through_delivered_quantities_one_line_per_license(self):
        assets = self._licenses(3)
        order = assets.sale_order_id
        self.assertEqual(set(order.order_line.mapped("qty_delivered_method")), {"esd"})
        self.assertEqual(order.order_line.mapped("qty_delivered"), [1.0, 1.0, 1.0])
        invoice = assets.invoice_id
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(len(invoice.invoice_line_ids), 3)
        self.assertEqual(assets.mapped("invoice_line_id.sale_line_ids"), order.order_line)
        self.assertEqual(order.invoice_status, "invoiced")

    # ------------------------------------------------------------------ returns
    def test_a_locked_order_neither_blocks_a_return_nor_its_credit_note(self):
        asset = self._licenses()
        asset.sale_order_id.action_lock()
        line = asset.invoice_line_id
        cancel_license(asset)
        self._assert_returned_and_credited_once(asset, line)

    def test_credit_note_keeps_the_invoice_lines_account_analytic_and_taxes(self):
        plan = self.env["account.analytic.plan"].create({"name": "Departments"})
        analytic = self.env["account.analytic.account"].create(
            {"name": "Licensing", "plan_id": plan.id}
        )
        asset = self._licenses()
        line = asset.invoice_line_id
        invoice = line.move_id
        # An accountant corrected the invoice: another income account and an analytic account.
        income = line.account_id.copy({"code": "700999", "name": "ESD licenses"})
        invoice.button_draft()
        line.write({"account_id": income.id, "analytic_distribution": {str(analytic.id): 100}})
        invoice.action_post()
        cancel_license(asset)
        credit_line = self._credits(asset)
        self.assertRecordValues(
            credit_line,
            [
                {
                    "account_id": income.id,
                    "analytic_distribution": {str(analytic.id): 100.0},
                    "tax_ids": self.tax.ids,
                    "price_unit": line.price_unit,
                    "discount": line.discount,
                    "quantity": 1.0,
                }
            ],
        )
        self.assertEqual(credit_line.move_id.amount_total, invoice.amount_total)

    def test_no_credit_note_for_a_draft_invoice_until_it_is_posted(self):
        asset = self._licenses()
        invoice = asset.invoice_id
        invoice.button_draft()
        cancel_license(asset)
        self.assertIn("is not posted", asset.activity_ids.note)
        self.assertEqual((asset.state, asset.return_state), ("cancelled", "accepted"))
        self.assertFalse(self._credits(asset))
        self.assertTrue(
            asset.activity_ids.filtered(
                lambda a: (
                    a.activity_type_id == self.env.ref("microsoft_esd.mail_activity_esd_credit")
                )
            )
        )
        invoice.action_post()
        finish_returns(self.env, asset)
        self._assert_returned_and_credited_once(asset, invoice.invoice_line_ids)
        self.assertFalse(asset.activity_ids)

    def test_no_credit_note_for_a_cancelled_invoice(self):
        asset = self._licenses()
        invoice = asset.invoice_id
        invoice.button_draft()
        invoice.button_cancel()
        cancel_license(asset)
        self.assertEqual((asset.state, asset.return_state), ("cancelled", "done"))
        self.assertFalse(self._credits(asset))

    def test_a_dropped_answer_is_finished_by_the_cron_exactly_once(self):
        asset = self._licenses()
        line = asset.invoice_line_id
        # Microsoft accepts the return, then every answer is lost.
        self.admin.faults(drop_after_commit=20, paths="return")
        self.assertIn("Odoo asks again", cancel_license(asset))
        self.assertEqual(self._cis(asset), "ReturnAccepted")
        self.assertEqual((asset.state, asset.return_state), ("active", "requested"))
        self.assertGreater(asset.next_attempt_at, fields.Datetime.now(), "after a backoff")
        self.env["esd.asset"]._cron_finish_returns()  # not due yet: CIS is not asked again
        self.assertEqual(asset.return_attempts, 1)
        self.assertFalse(self._credits(asset))
        self.admin.clear_faults()
        with self.assertRaisesRegex(Exception, "already under way"):
            asset.action_cancel_license()
        finish_returns(self.env, asset)
        self._assert_returned_and_credited_once(asset, line)
        finish_returns(self.env, asset)  # nothing left to do: no second credit
        self.assertEqual(len(self._credits(asset)), 1)

    def test_a_dropped_answer_then_the_hourly_refresh_still_credits_once(self):
        asset = self._licenses()
        line = asset.invoice_line_id
        self.admin.faults(drop_after_commit=20, paths="return")
        cancel_license(asset)
        self.admin.clear_faults()
        self.env["esd.asset"]._cron_refresh_statuses()
        self.assertEqual((asset.state, asset.return_state), ("cancelled", "accepted"))
        finish_returns(self.env, asset)
        self._assert_returned_and_credited_once(asset, line)

    def test_a_return_made_at_microsoft_is_a_finding_credited_on_decision(self):
        asset, fine = self._licenses(2)
        line = asset.invoice_line_id
        self.admin.force_status(asset.esd_license_id, "ReturnAccepted", "Successful")
        self.env["esd.asset"]._cron_refresh_statuses()
        self.assertEqual((asset.state, asset.return_state), ("cancelled", "external"))
        self.assertFalse(self._credits(asset), "no credit note without a decision")
        self.assertTrue(asset.activity_ids)
        wizard = self.env["esd.reconciliation"].create(
            {"instance_ids": [Command.set(self.instance.ids)]}
        )
        wizard.action_run()
        (finding,) = wizard.line_ids.filtered(lambda f: f.asset_id == asset)
        self.assertEqual(finding.kind, "returned_not_credited")
        self.assertNotIn(fine, wizard.line_ids.asset_id)
        finding.action_credit()
        self._assert_returned_and_credited_once(asset, line)
        wizard.action_run()
        self.assertNotIn(asset, wizard.line_ids.asset_id)
        finish_returns(self.env, asset)
        self.assertEqual(len(self._credits(asset)), 1)

    def test_a_return_refused_by_microsoft_keeps_the_license_active(self):
        asset = self._licenses()
        self.admin.redeem(asset.esd_license_id)
        self.assertIn("LicenseRedeemed", cancel_license(asset))
        self.assertRecordValues(
            asset, [{"state": "active", "token_status": "redeemed", "return_state": "none"}]
        )
        self.assertFalse(self._credits(asset))

    # ------------------------------------------------------------------ CIS accounts
    def test_confirmation_never_calls_cis(self):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.other.id,
                "order_line": [Command.create({"product_id": self.office.product_variant_id.id})],
            }
        )
        self.admin.faults(fail=100, fail_status=503)
        calls = self.admin.stats()["cis_requests"]
        order.action_confirm()
        self.assertEqual(self.admin.stats()["cis_requests"], calls)
        self.assertEqual(order.state, "sale")
        asset = order.esd_asset_ids
        self.assertEqual(asset.sync_status, "unsynchronised")
        self.env["esd.asset"]._esd_provision_pending()
        self.assertEqual(asset.sync_status, "unsynchronised")  # waits and retries
        self.assertIn("503", asset.sync_error)
        self.admin.clear_faults()
        asset.sudo().next_attempt_at = False
        self.env["esd.asset"]._esd_provision_pending()
        self.assertEqual(asset.sync_status, "synchronized")

    def test_an_account_sync_whose_answer_was_lost_is_retried_with_the_same_request_id(self):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.other.id,
                "order_line": [Command.create({"product_id": self.office.product_variant_id.id})],
            }
        )
        order.action_confirm()
        account = self.other._esd_account(self.instance)
        request_id = account.request_id
        self.assertTrue(request_id)
        external_id = f"odoo-{self.env['ir.config_parameter'].get_param('database.uuid')[:8]}-"
        external_id += str(self.other.id)
        sent_before = [
            a["requestIds"] for a in self.admin.accounts() if a["externalId"] == external_id
        ]
        sent_before = set(sent_before[0]) if sent_before else set()
        self.admin.faults(drop_after_commit=20, paths="accounts")
        self.env["esd.asset"]._esd_provision_pending()
        asset = order.esd_asset_ids
        self.assertEqual(asset.sync_status, "unsynchronised")
        self.assertEqual(account.sync_status, "not_synced")
        self.admin.clear_faults()
        asset.sudo().next_attempt_at = False
        self.env["esd.asset"]._esd_provision_pending()
        self.assertEqual(asset.sync_status, "synchronized")
        (remote,) = [a for a in self.admin.accounts() if a["accountId"] == account.account_id]
        self.assertEqual(set(remote["requestIds"]) - sent_before, {request_id})

    def test_an_account_cis_refuses_fails_its_licenses_with_the_reason(self):
        self.other.email = "it@northwind.example"
        order = self.env["sale.order"].create(
            {
                "partner_id": self.other.id,
                "order_line": [Command.create({"product_id": self.office.product_variant_id.id})],
            }
        )
        order.action_confirm()
        self.admin.faults(fail=1, fail_status=422, paths="accounts")
        self.env["esd.asset"]._esd_provision_pending()
        asset = order.esd_asset_ids
        self.assertEqual(asset.sync_status, "failed")
        self.assertIn("CIS refused the account of Northwind Traders", asset.sync_error)
        self.assertTrue(asset.activity_ids)
        asset.action_retry_provisioning()
        self.env["esd.asset"]._esd_provision_pending()
        self.assertEqual(asset.sync_status, "synchronized")

    # ------------------------------------------------------------------ one bad record
    def test_one_bad_license_in_a_batch_never_blocks_the_others(self):
        decoy = self._licenses()
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [
                    Command.create(
                        {"product_id": self.office.product_variant_id.id, "product_uom_qty": 3}
                    )
                ],
            }
        )
        order.action_confirm()
        poison = order.esd_asset_ids.sorted("id")[1]
        # Its CIS license id is already recorded on another license (corrupt data): recording
        # it violates a constraint.
        self.assertEqual(poison._esd_sync_accounts(), poison)
        job = poison._esd_job()
        with self.instance._cis_client() as client:
            ordered = client.order_license(
                job.product_id,
                job.customer_account_id,
                job.reseller_account_id,
                job.external_reference,
                request_id=job.request_id,
            ).licenses[0]
        license_id = ordered.license_id
        decoy.sudo().esd_license_id = license_id
        cron = self.env.ref("microsoft_esd.ir_cron_esd_provision")
        with (
            self.assertLogs("odoo.addons.microsoft_esd.models.esd_asset_provisioning", "ERROR"),
            self.assertLogs("odoo.sql_db", "ERROR") as failed_query,
        ):
            cron.method_direct_trigger()
        # Odoo logs the failed query with its values: the key in it is sealed.
        self.assertFalse(ordered.token in "\n".join(failed_query.output), "a key in the log")
        assets = order.esd_asset_ids.sorted("id")
        self.assertEqual(assets.mapped("sync_status"), ["synchronized", "failed", "synchronized"])
        self.assertIn("could not be recorded", poison.sync_error)
        self.assertTrue(cron.active)
        self.assertEqual(cron.failure_count, 0)
        self.assertEqual(len(assets.invoice_id.invoice_line_ids), 2)

    def test_an_order_that_cannot_be_invoiced_never_blocks_another(self):
        receivable = self.customer.property_account_receivable_id
        closed = receivable.copy({"code": "411999", "name": "Closed receivable"})
        closed.deprecated = True
        self.other.property_account_receivable_id = closed
        with self.assertLogs("odoo.addons.microsoft_esd.models.sale_order", "ERROR"):
            bad = self._licenses(partner=self.other)
        good = self._licenses()
        self.assertFalse(bad.invoice_line_id)
        self.assertIn("deprecated", bad.sale_order_id.esd_invoice_error)
        self.assertTrue(bad.sale_order_id.activity_ids)
        self.assertEqual(good.invoice_id.state, "posted")
        # Fixed, then retried from the order.
        self.other.property_account_receivable_id = receivable
        bad.sale_order_id.action_esd_retry_invoicing()
        self.assertEqual(bad.invoice_id.state, "posted")
        self.assertFalse(bad.sale_order_id.esd_invoice_error)

    def test_a_license_email_that_cannot_be_rendered_never_blocks_the_others(self):
        assets = self._licenses(2)
        sent = self.env["mail.mail"].search_count([("esd_asset_id", "in", assets.ids)])
        self.assertEqual(sent, 2)
        # A template edited with a mistake: the emails of this batch fail one by one.
        template = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        template.subject = "{{ object.no_such_field }}"
        assets.sudo().welcome_pending = True
        with self.assertLogs("odoo.addons.microsoft_esd.models.esd_asset_provisioning", "ERROR"):
            self.env["esd.asset"]._esd_send_pending_welcome()
        self.assertFalse(any(assets.mapped("welcome_pending")))
        for asset in assets:
            self.assertIn("could not be sent", asset.message_ids[0].body)
            self.assertFalse(secrets_of(asset)[0] in asset.message_ids[0].body)

    def test_license_emails_rendered_as_a_batch_each_to_its_own_recipients(self):
        assets = self._licenses(3)
        self.env["mail.mail"].search([("esd_asset_id", "in", assets.ids)]).unlink()
        # One license's email cannot be rendered: the others still leave, each to its own.
        bad = assets[1]
        template = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        failing = f"object.no_such_field if object.id == {bad.id} else object.name"
        template.subject = "{{ " + failing + " }}"
        assets.sudo().welcome_pending = True
        with self.assertLogs("odoo.addons.microsoft_esd.models.esd_asset_provisioning", "ERROR"):
            self.env["esd.asset"]._esd_send_pending_welcome()
        self.assertFalse(any(assets.mapped("welcome_pending")))
        mails = self.env["mail.mail"].search([("esd_asset_id", "in", assets.ids)])
        self.assertEqual(mails.esd_asset_id, assets - bad)
        for mail in mails:
            asset = mail.esd_asset_id
            self.assertEqual(mail.subject, asset.name)
            self.assertEqual(mail.email_to, asset.mail_to)
            self.assertTrue(secrets_of(asset)[0] in outgoing_body(mail), "the email has its key")
        send_license_emails(self.env)
        for asset in assets - bad:
            self.assertIn("License email sent to", asset.message_ids[0].body)
        self.assertIn("could not be sent", bad.message_ids[0].body)

    def test_an_order_provisioned_over_several_batches_is_invoiced_once_after_the_last(self):
        # Parallelism 1: batches of 4, so 10 licenses take three calls of the cron. Each call
        # records its licenses as CIS answers them, then invoices the orders ready.
        self.env["ir.config_parameter"].set_param("microsoft_esd.parallelism", "1")
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [
                    Command.create(
                        {"product_id": self.office.product_variant_id.id, "product_uom_qty": 10}
                    )
                ],
            }
        )
        order.action_confirm()
        Asset = self.env["esd.asset"]
        delivered = []
        while done := Asset._cron_provision():
            delivered.append(done)
            if sum(delivered) < 10:
                self.assertFalse(order.invoice_ids, "invoiced before its last license")
        self.assertEqual(delivered, [4, 4, 2])
        self.assertEqual(set(order.esd_asset_ids.mapped("sync_status")), {"synchronized"})
        self.assertEqual(len(order.invoice_ids), 1)
        self.assertEqual(order.invoice_ids.state, "posted")
        self.assertEqual(order.invoice_ids.invoice_line_ids, order.esd_asset_ids.invoice_line_id)
        self.env["sale.order"]._esd_invoice_ready()  # another worker's pass: nothing to add
        self.assertEqual(len(order.invoice_ids), 1)

    def test_a_failed_license_delivered_later_gets_a_follow_up_invoice(self):
        self.env["ir.config_parameter"].set_param("microsoft_esd.parallelism", "1")
        self.admin.faults(fail=1, fail_skip=1, fail_status=422, paths="orders")
        assets = self._licenses(3)
        self.assertEqual(assets.mapped("sync_status"), ["synchronized", "failed", "synchronized"])
        first = assets.invoice_id
        self.assertEqual(len(first.invoice_line_ids), 2)
        assets[1].action_retry_provisioning()
        self.env["esd.asset"]._esd_provision_pending()
        follow_up = assets.invoice_id - first
        self.assertEqual(len(follow_up.invoice_line_ids), 1)
        self.assertEqual(assets[1].invoice_id, follow_up)
        self.assertEqual(assets.sale_order_id.invoice_status, "invoiced")
        # A return after all that credits the right line only.
        cancel_license(assets[2])
        self.assertEqual(len(self._credits(assets[2])), 1)
        self.assertFalse(self._credits(assets[0]) | self._credits(assets[1]))

    # ------------------------------------------------------------------ sale.automatic_invoice
    def test_an_order_invoiced_at_payment_whose_license_fails_is_credited_on_decision(self):
        """sale.automatic_invoice (the shop's usual setting) invoices a paid order at payment,
        before its licenses are delivered: a license that then fails for good asks its
        salesperson to retry it or to credit it, and the credit is one click."""
        order = paid_order(self, self.customer, self.office, 2)
        self.assertEqual(order.state, "sale")
        invoice = order.invoice_ids
        self.assertEqual((len(invoice), invoice.state), (1, "posted"))
        self.assertEqual(len(invoice.invoice_line_ids), 2, "invoiced at payment, undelivered")
        self.admin.faults(fail=1, fail_status=400, paths="orders")
        self.env["esd.asset"]._esd_provision_pending()
        assets = order.esd_asset_ids
        failed = assets.filtered(lambda a: a.lifecycle_state == "failed")
        self.assertEqual(len(failed), 1)
        self.assertEqual((assets - failed).lifecycle_state, "delivered")
        self.assertEqual(order.invoice_ids, invoice, "no second invoice")
        credit_type = self.env.ref("microsoft_esd.mail_activity_esd_credit")
        (activity,) = failed.activity_ids.filtered(lambda a: a.activity_type_id == credit_type)
        self.assertIn("Credit Failed License", str(activity.note))
        failed.action_credit_failed_license()
        credit = failed.credit_note_id
        self.assertEqual((credit.move_type, credit.state), ("out_refund", "posted"))
        self.assertEqual(credit.reversed_entry_id, invoice)
        self.assertEqual(credit.amount_total, failed.invoice_line_id.price_total)
        self.assertEqual((failed.lifecycle_state, failed.state), ("stopped", "cancelled"))
        self.assertFalse(failed.activity_ids)
        with self.assertRaisesRegex(UserError, "nothing to credit"):
            failed.action_credit_failed_license()
