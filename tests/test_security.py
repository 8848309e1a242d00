"""The access model's details the matrix does not show cell by cell.

Keys at rest (weak secret, rotation, re-encryption), the license email, staging copies,
throttling, and the record rules of the other ESD models.
"""

import os

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import new_test_user, tagged
from odoo.tools import config

from .common import EsdSimulatorCase, office_for_sale, secrets_of, sell_licenses

OLD_SECRET = "0ld-s3cret-tHat-was-lOng-enough-for-its-time-42"
NEW_SECRET = "n3w-Secret-after-rotat1on-0f-the-esd-token-key-77"


@tagged("post_install", "-at_install")
class TestSecurity(EsdSimulatorCase):
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

    def _licenses(self, count=1):
        return sell_licenses(self.env, self.office, self.customer, count)

    def _configure(self, secret):
        self.patch(config, "options", dict(config.options, esd_token_key=secret))
        self.env.invalidate_all()

    # ------------------------------------------------------------------ keys at rest
    def test_without_esd_token_key_keys_are_still_sealed(self):
        asset = self._licenses()
        token, link = secrets_of(asset)
        stored = asset.sudo().read(["token_sealed", "activation_link_sealed"])[0]
        self.assertTrue(stored["token_sealed"].startswith("enc:v2:"))
        self.assertFalse(
            token in stored["token_sealed"] or link in stored["activation_link_sealed"]
        )
        self.assertEqual(self.env["esd.asset"].search([("token", "=", token)]), asset)
        settings = self.env["res.config.settings"].create({})
        self.assertFalse(settings.esd_keys_encrypted)
        self.assertEqual(settings.esd_keys_outdated_count, 0)

    def test_a_weak_secret_orders_nothing_and_says_what_a_good_one_is(self):
        self._configure("correct horse battery")
        before = self.admin.stats()["licenses"]
        asset = self._licenses()
        self.assertEqual(asset.sync_status, "failed")
        self.assertIn("at least 32 random characters", asset.sync_error)
        self.assertEqual(self.admin.stats()["licenses"], before, "a key was ordered")
        with self.assertLogs("odoo.addons.microsoft_esd.models.esd_asset", "ERROR"):
            settings = self.env["res.config.settings"].create({})
            self.assertIn("too weak", settings.esd_keys_error)

    def test_rotation_reencryption_and_search_by_key(self):
        self._configure(OLD_SECRET)
        assets = self._licenses(2)
        keys = [secrets_of(asset)[0] for asset in assets]
        self._configure(f"{NEW_SECRET},{OLD_SECRET}")
        # Every key still opens and is still found, before any re-encryption.
        self.assertTrue([secrets_of(asset)[0] for asset in assets] == keys)
        self.assertEqual(self.env["esd.asset"].search([("token", "=", keys[1])]), assets[1])
        settings = self.env["res.config.settings"].create({})
        self.assertTrue(settings.esd_keys_encrypted)
        self.assertEqual(settings.esd_keys_outdated_count, 2)
        settings.action_esd_reencrypt_keys()
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.esd_keys_outdated_count, 0)
        # Once re-encrypted, the old secret can go.
        self._configure(NEW_SECRET)
        self.assertTrue([secrets_of(asset)[0] for asset in assets] == keys)
        self.assertEqual(self.env["esd.asset"].search([("token", "=", keys[0])]), assets[0])

    def test_reencryption_is_for_system_administrators(self):
        """It rewrites every company's keys with the secret of odoo.conf: an ESD manager of one
        company does not (issue 29)."""
        for login, groups in (
            ("esd_plain", "microsoft_esd.group_esd_user"),
            ("esd_mgr_reenc", "microsoft_esd.group_esd_manager"),
        ):
            user = new_test_user(self.env, login, groups=groups)
            settings = self.env["res.config.settings"].with_user(user).sudo().create({})
            with self.assertRaises(AccessError):
                settings.with_user(user).action_esd_reencrypt_keys()

    # ------------------------------------------------------------------ the license email
    def test_an_edited_template_neither_adds_recipients_nor_shows_keys_elsewhere(self):
        template = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        template.write({"email_cc": "thief@example.com", "email_to": "thief@example.com"})
        asset = self._licenses()
        (mail,) = self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
        self.assertFalse(mail.recipient_ids or mail.email_cc)
        self.assertEqual(mail.email_to, '"Contoso Ltd" <it@contoso.example>')
        # Rendered by anyone else (a preview, a composer), the template holds no key at all: the
        # job appends it.
        rendered = template._render_field("body_html", asset.ids)[asset.id]
        self.assertFalse(secrets_of(asset)[0] in rendered, "a preview shows the key")
        self.assertNotIn("ESD-KEY-", rendered)

    def test_each_companys_esd_managers_edit_their_license_email(self):
        """The shared template is the administrators'; each company's ESD managers edit their
        company's copy, no other (issue 29)."""
        editor = new_test_user(
            self.env, "tpl_editor", groups="base.group_user,mail.group_mail_template_editor"
        )
        shared = self.env.ref("microsoft_esd.mail_template_esd_welcome")
        with self.assertRaises(AccessError):
            shared.with_user(editor).write({"subject": "Give me the keys"})
        other = self.env.ref("sale.email_template_edi_sale")
        other.with_user(editor).write({"subject": "Still allowed elsewhere"})
        manager = new_test_user(self.env, "esd_mgr2", groups="microsoft_esd.group_esd_manager")
        with self.assertRaises(AccessError):
            shared.with_user(manager).write({"subject": "Your license {{ object.name }}"})
        action = self.instance.with_user(manager).action_esd_edit_license_template()
        mine = self.env["mail.template"].browse(action["res_id"])
        self.assertEqual(mine.esd_company_id, self.env.company)
        mine.with_user(manager).write({"subject": "Your license {{ object.name }}"})
        # Another company's ESD manager cannot touch it.
        branch = self.env["res.company"].create({"name": "ESD Branch B"})
        manager_b = new_test_user(
            self.env,
            "esd_mgr_b_tpl",
            groups="microsoft_esd.group_esd_manager",
            company_id=branch.id,
            company_ids=[Command.set(branch.ids)],
        )
        with self.assertRaises(AccessError):
            mine.with_user(manager_b).write({"subject": "Reply to attacker"})
        # The company's licenses go out with its own wording.
        asset = self._licenses()
        (mail,) = self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
        self.assertIn(asset.name, mail.subject)
        self.assertTrue(mail.subject.startswith("Your license"))

    # ------------------------------------------------------------------ staging copies
    def test_neutralization_leaves_no_usable_secret(self):
        asset = self._licenses()
        asset.sudo()._portal_ensure_token()
        asset._esd_resend()  # a key email waiting in the queue
        attachment = (
            self.env["ir.attachment"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "esd.instance"),
                    ("res_field", "=", "certificate_file"),
                    ("res_id", "=", self.instance.id),
                ]
            )
        )
        self.assertTrue(attachment.store_fname)
        self.env.flush_all()
        for query in get_neutralization_queries(["microsoft_esd"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        self.assertFalse(self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)]))
        self.assertEqual(secrets_of(asset), (False, False))
        self.assertFalse(asset.sudo().access_token)
        self.assertTrue(asset.token_tail)
        instance = self.instance.with_context(active_test=False).sudo()
        self.assertFalse(instance.certificate_file or instance.certificate_password)
        with self.assertRaisesRegex(UserError, "has no certificate"):
            instance._esd_config()
        # The copy's first start deletes the certificate through the ORM: its file is marked
        # for the filestore's cleanup.
        fname = attachment.store_fname
        self.env["esd.instance"]._esd_delete_neutralized_certificates()
        self.assertFalse(attachment.exists())
        checklist = self.env["ir.attachment"]._full_path(os.path.join("checklist", fname))
        self.assertTrue(os.path.exists(checklist), "the certificate file is not marked for GC")

    # ------------------------------------------------------------------ portal throttling
    def test_portal_update_and_resend_at_most_once_a_minute(self):
        asset = self._licenses()
        asset._esd_portal_update_status()
        with self.assertRaisesRegex(UserError, "less than a minute ago"):
            asset._esd_portal_update_status()
        asset._esd_portal_resend()
        with self.assertRaisesRegex(UserError, "less than a minute ago"):
            asset._esd_portal_resend()
        asset._esd_request_cancellation("Too many", self.customer)
        with self.assertRaisesRegex(UserError, "already pending"):
            asset._esd_request_cancellation("Again", self.customer)

    # ------------------------------------------------------------------ record rules
    def _order_of(self, salesperson):
        order = self.env["sale.order"].create(
            {
                "partner_id": self.customer.id,
                "user_id": salesperson.id,
                "order_line": [Command.create({"product_id": self.office.product_variant_id.id})],
            }
        )
        order.action_confirm()
        self.env["esd.asset"]._esd_provision_pending()
        return order.esd_asset_ids

    def test_salesperson_sees_own_orders_licenses_masked(self):
        seller = new_test_user(self.env, "seller", groups="sales_team.group_sale_salesman")
        other_seller = new_test_user(self.env, "seller2", groups="sales_team.group_sale_salesman")
        mine, theirs = self._order_of(seller), self._order_of(other_seller)
        Asset = self.env["esd.asset"].with_user(seller)
        self.assertEqual(Asset.search([("id", "in", (mine | theirs).ids)]), mine)
        self.assertEqual(mine.with_user(seller).token, "*****-*****-*****-*****-" + mine.token_tail)
        with self.assertRaises(AccessError):
            theirs.with_user(seller).read(["token"])
        everything = new_test_user(
            self.env, "seller_all", groups="sales_team.group_sale_salesman_all_leads"
        )
        self.assertEqual(
            self.env["esd.asset"].with_user(everything).search([("id", "in", (mine | theirs).ids)]),
            mine | theirs,
        )

    def test_other_company_esd_user_sees_no_account_summary_or_finding(self):
        branch = self.env["res.company"].create({"name": "Elsewhere"})
        user = new_test_user(
            self.env,
            "esd_elsewhere",
            groups="microsoft_esd.group_esd_manager",
            company_id=branch.id,
            company_ids=[Command.set(branch.ids)],
        )
        self.admin.faults(fail=1, fail_status=422, paths="orders")
        self._licenses()  # failed: a finding
        summary = self.instance._sync_catalog()
        wizard = self.env["esd.reconciliation"].create(
            {"instance_ids": [Command.set(self.instance.ids)]}
        )
        wizard.action_run()
        self.assertTrue(wizard.line_ids)
        self.assertTrue(self.customer._esd_account(self.instance))
        self.assertFalse(self.env["esd.partner.account"].with_user(user).search([]))
        self.assertFalse(self.env["esd.reconciliation.line"].with_user(user).search([]))
        Summary = self.env["esd.catalog.sync.result"].with_user(user)
        self.assertFalse(Summary.search([("id", "=", summary.id)]))

    def test_connection_routing_is_for_system_administrators(self):
        manager = new_test_user(self.env, "esd_mgr3", groups="microsoft_esd.group_esd_manager")
        instance = self.instance.with_user(manager)
        self.assertTrue(instance.service_url)  # managers read it
        for field in ("service_url", "authority", "tenant", "client_id", "resource_api"):
            with self.assertRaisesRegex(AccessError, "system administrators"):
                instance.write({field: "https://elsewhere.example"})
        instance.write({"return_window_days": 14})  # the rest of the instance is theirs
        values = self.env["esd.instance"]._esd_values_from_simulator(self.simulator.config_path)
        values.pop("ca_bundle")
        values.pop("certificate_file")
        values.pop("certificate_password")
        with self.assertRaisesRegex(AccessError, "system administrators"):
            self.env["esd.instance"].with_user(manager).create(values)
