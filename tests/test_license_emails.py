"""The license email as its readers rely on it, whatever makes the batch fast (issue 22).

The emails of a batch are rendered together, created already linked and addressed, and each
stored body is sanitized once: these are what that must never change. Each customer reads the
template in their language, an ESD manager's edit shows in the next email, no script from the
template or from a customer's name reaches an email, each license gets one email with its own
key and no other's. Keys are compared with assertTrue/assertFalse (a failing assertIn would
print them).
"""

from odoo import Command
from odoo.tests import new_test_user, tagged

from odoo.addons.microsoft_esd.models.mail_message import sanitize_once

from .common import (
    EsdSimulatorCase,
    customer_company,
    office_for_sale,
    outgoing_body,
    secrets_of,
    send_license_emails,
)

KEEP = "Keep this key private: anyone who has it can activate the product."
KEEP_FR = "Gardez cette clé pour vous : elle active le produit."
DANGERS = ("<script", "onerror", "javascript:", "<iframe")
SCRIPTS = (
    '<script>alert("template")</script><img src="/logo.png" onerror="alert(1)">'
    '<a href="javascript:alert(2)">activate</a><iframe src="https://evil.example/"></iframe>'
)


@tagged("post_install", "-at_install")
class TestLicenseEmails(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env)
        cls.env["res.lang"]._activate_lang("fr_FR")
        cls.manager = new_test_user(
            cls.env, "mail_mgr", groups="base.group_user,microsoft_esd.group_esd_manager"
        )
        # The company's own license email, made from the shared one by its ESD manager.
        action = cls.instance.with_user(cls.manager).action_esd_edit_license_template()
        cls.template = cls.env["mail.template"].browse(action["res_id"])
        cls.body = str(cls.template.body_html)
        # The French translation, as an ESD manager gives it in the translation dialog.
        cls._as_manager().update_field_translations(
            "body_html", {"fr_FR": cls.body.replace(KEEP, KEEP_FR)}
        )
        cls._as_manager().update_field_translations(
            "subject",
            {"fr_FR": "Votre licence Microsoft : {{ object.product_id.name }} ({{ object.name }})"},
        )
        cls.english = customer_company(cls.env, "Contoso Ltd", lang="en_US")
        cls.french = customer_company(cls.env, "Lutece SARL", lang="fr_FR")

    @classmethod
    def _as_manager(cls):
        return cls.template.with_user(cls.manager)

    def _deliver(self, *orders):
        """Confirm one order per (customer, count), deliver them all, then send the emails as
        the email cron does, in one batch; the licenses of each order."""
        confirmed = []
        for partner, count in orders:
            product = self.office.product_variant_id
            order = self.env["sale.order"].create(
                {
                    "partner_id": partner.id,
                    "order_line": [
                        Command.create({"product_id": product.id, "product_uom_qty": count})
                    ],
                }
            )
            order.action_confirm()
            confirmed.append(order)
        self.env["esd.asset"]._esd_provision_pending()
        sent = self.env["esd.asset"]._esd_send_pending_welcome()
        self.assertEqual(sent, sum(count for _partner, count in orders))
        return [order.esd_asset_ids.sorted("id") for order in confirmed]

    def _mail(self, asset):
        mail = self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
        self.assertEqual(len(mail), 1, "one email per license")
        return mail

    def test_each_customer_reads_the_template_in_their_language(self):
        french, english = self._deliver((self.french, 2), (self.english, 2))
        for asset in french:
            mail = self._mail(asset)
            self.assertTrue(mail.subject.startswith("Votre licence Microsoft : "), mail.subject)
            self.assertIn(KEEP_FR, mail.body_html)
            self.assertNotIn(KEEP, mail.body_html)
            self.assertEqual(mail.email_to, self.french.email_formatted)
        for asset in english:
            mail = self._mail(asset)
            self.assertTrue(mail.subject.startswith("Your Microsoft license: "), mail.subject)
            self.assertIn(KEEP, mail.body_html)
            self.assertNotIn(KEEP_FR, mail.body_html)
            self.assertEqual(mail.email_to, self.english.email_formatted)

    def test_a_managers_edit_shows_in_the_next_email(self):
        ((before,),) = self._deliver((self.english, 1))
        self._as_manager().write({"body_html": self.body.replace("Welcome!", "Thank you!")})
        self._as_manager().update_field_translations(
            "body_html", {"fr_FR": self.body.replace(KEEP, "Merci ! " + KEEP_FR)}
        )
        (english,), (french,) = self._deliver((self.english, 1), (self.french, 1))
        self.assertIn("Thank you!", self._mail(english).body_html)
        self.assertNotIn("Welcome!", self._mail(english).body_html)
        self.assertIn("Merci ! " + KEEP_FR, self._mail(french).body_html)
        self.assertIn("Welcome!", self._mail(before).body_html, "an email already queued")
        self.assertTrue(secrets_of(english)[0] in outgoing_body(self._mail(english)))

    def test_no_script_from_the_template_or_a_name_reaches_an_email(self):
        """What Odoo does for the template's own language (its body is sanitized when saved)
        holds for its translations too; a customer's name is escaped by the rendering."""
        self._as_manager().write({"body_html": self.body.replace("Welcome!", "Welcome!" + SCRIPTS)})
        self._as_manager().update_field_translations(
            "body_html", {"fr_FR": self.body.replace(KEEP, KEEP_FR + SCRIPTS)}
        )
        for lang in ("en_US", "fr_FR"):
            stored = str(self.template.with_context(lang=lang).body_html)
            self.assertFalse([d for d in DANGERS if d in stored], f"template in {lang}")
            self.assertNotIn('alert("template")', stored)
        named = customer_company(self.env, 'Evil <script>alert("name")</script> Corp')
        (english,), (french,), (evil,) = self._deliver(
            (self.english, 1), (self.french, 1), (named, 1)
        )
        for asset in english | french | evil:
            mail = self._mail(asset)
            sent = outgoing_body(mail)
            for html in (mail.body_html, mail.mail_message_id.body, sent):
                self.assertFalse([d for d in DANGERS if d in html], f"email of {asset.name}")
                self.assertNotIn('alert("template")', html, "the script's content is gone too")
            self.assertTrue(secrets_of(asset)[0] in sent, "the email still carries its key")
        self.assertIn(KEEP_FR, self._mail(french).body_html)
        self.assertIn("Evil &lt;script&gt;alert", self._mail(evil).body_html)

    def test_one_email_per_license_with_its_own_key_only(self):
        (assets,) = self._deliver((self.english, 3))
        mails = self.env["mail.mail"].search([("esd_asset_id", "in", assets.ids)])
        self.assertEqual(len(mails), 3)
        self.assertEqual(mails.esd_asset_id, assets)
        keys = {asset: secrets_of(asset)[0] for asset in assets}
        self.assertEqual(len(set(keys.values())), 3)
        for asset in assets:
            mail = self._mail(asset)
            sent = outgoing_body(mail)
            self.assertIn(f"({asset.name})", mail.subject)
            self.assertTrue(keys[asset] in sent, "the email carries its license's key")
            others = [key for other, key in keys.items() if other != asset]
            self.assertFalse(any(key in sent for key in others), "another license's key")
            self.assertFalse(any(key in mail.body_html for key in keys.values()), "a stored key")
            self.assertFalse(mail.model or mail.res_id, "the email is not in the chatter")
        # Once they left, each license's chatter says to whom, never the key.
        send_license_emails(self.env)
        for asset in assets:
            (note,) = asset.message_ids.filtered(lambda m: "License email sent to" in m.body)
            self.assertIn("it@contoso.example", note.body)
            self.assertFalse(any(key in note.body for key in keys.values()), "a key in chatter")
            self.assertEqual(asset.mail_state, "sent")

    def test_stored_bodies_are_what_odoos_sanitizer_returns(self):
        """Sanitized once per distinct HTML in a batch, each body is exactly what Odoo's
        sanitizer returns (the same as outside a batch)."""
        (assets,) = self._deliver((self.english, 2))
        Message = self.env["mail.message"]
        for asset in assets:
            mail = self._mail(asset)
            alone = Message.create({"body": mail.body_html})
            self.assertEqual(mail.mail_message_id.body, alone.body)
            self.assertEqual(mail.body, alone.body)
        evil = "<p>Hello</p>" + SCRIPTS
        with sanitize_once():
            inside = Message.create([{"body": evil}, {"body": evil}])
        outside = Message.create({"body": evil})
        self.assertEqual(inside.mapped("body"), [outside.body, outside.body])
        self.assertFalse([d for d in DANGERS if d in outside.body])
        self.assertIn("Hello", outside.body)

    def test_an_email_rendered_outside_the_license_emails_gets_no_key(self):
        """Only the license emails' own code links an email to its license (and its key)."""
        ((asset,),) = self._deliver((self.english, 1))
        mail = self.template.send_mail_batch(asset.ids)
        self.assertFalse(mail.esd_asset_id)
        self.assertFalse(secrets_of(asset)[0] in outgoing_body(mail), "a key in another email")
