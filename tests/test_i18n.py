"""Translations: the committed .pot is the one Odoo exports, and customers read French in French."""

import difflib
import io

from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged
from odoo.tools.misc import file_path
from odoo.tools.translate import trans_export

from .common import connected_instance, office_for_sale, sell_licenses, start_simulator


def _entries(pot):
    """The terms of a .pot, without its header (POT-Creation-Date and the like)."""
    return pot.split("\n\n", 1)[1] if "\n\n" in pot else ""


@tagged("post_install", "-at_install")
class TestPotIsCurrent(TransactionCase):
    def test_committed_pot_is_what_odoo_exports(self):
        """i18n/microsoft_esd.pot holds every translatable term as Odoo exports it: after a
        change to a term (Python, view, field, template), `make pot` exports it again."""
        buffer = io.BytesIO()
        trans_export(None, ["microsoft_esd"], buffer, "po", self.env.cr)
        exported = _entries(buffer.getvalue().decode())
        with open(file_path("microsoft_esd/i18n/microsoft_esd.pot"), encoding="utf-8") as pot:
            committed = _entries(pot.read())
        if committed != exported:
            diff = difflib.unified_diff(
                committed.splitlines(), exported.splitlines(), "committed", "exported", lineterm=""
            )
            self.fail(
                "i18n/microsoft_esd.pot is stale: run `make pot` and commit it.\n"
                + "\n".join(list(diff)[:60])
            )
        self.assertIn('msgid "Being delivered"', committed)


@tagged("post_install", "-at_install")
class TestCustomerLanguage(HttpCase):
    """The license email and the portal are in the customer's language, as Odoo's own are."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        start_simulator(cls)
        cls.instance = connected_instance(cls.env, cls.simulator.config_path)
        cls.office = office_for_sale(cls.env, 100)
        cls.env["res.lang"]._activate_lang("fr_FR")
        # A French translation of the template, as an Odoo translator would give it.
        cls.template = cls.env.ref("microsoft_esd.mail_template_esd_welcome")
        # The template's body is one translation term (mail.template's body_html is translated
        # whole): the French body is the English one with this sentence in French.
        (body,) = cls.template._fields["body_html"].get_trans_terms(cls.template.body_html)
        keep = "Keep this key private: anyone who has it can activate the product."
        french = body.replace(keep, "Gardez cette clé pour vous : elle active le produit.")
        cls.template.update_field_translations("body_html", {"fr_FR": french})
        cls.template.update_field_translations(
            "subject",
            {"fr_FR": "Votre licence Microsoft : {{ object.product_id.name }} ({{ object.name }})"},
        )

        def customer(name, lang):
            return cls.env["res.partner"].create(
                {
                    "name": name,
                    "is_company": True,
                    "email": f"it@{name.lower()}.example",
                    "country_id": cls.env.ref("base.us").id,
                    "lang": lang,
                }
            )

        cls.french = customer("Lutece", "fr_FR")
        cls.english = customer("Contoso", "en_US")

    def _welcome_mail(self, asset):
        return self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])

    def test_license_email_in_the_customer_language(self):
        (french,) = sell_licenses(self.env, self.office, self.french)
        (english,) = sell_licenses(self.env, self.office, self.english)
        mail = self._welcome_mail(french)
        self.assertEqual(len(mail), 1)
        self.assertTrue(mail.subject.startswith("Votre licence Microsoft : "), mail.subject)
        self.assertIn("Gardez cette clé pour vous", mail.body_html)
        self.assertNotIn("Keep this key private", mail.body_html)
        mail = self._welcome_mail(english)
        self.assertTrue(mail.subject.startswith("Your Microsoft license: "), mail.subject)
        self.assertIn("Keep this key private", mail.body_html)

    def test_portal_in_the_customer_language(self):
        (asset,) = sell_licenses(self.env, self.office, self.french)
        user = new_test_user(
            self.env, "lutece", groups="base.group_portal", name="Jeanne Lutece", lang="fr_FR"
        )
        user.partner_id.parent_id = self.french
        website = self.env["website"].get_current_website()
        website.language_ids |= self.env.ref("base.lang_fr")
        view = self.env.ref("microsoft_esd.portal_my_esd_asset")
        view.update_field_translations("arch_db", {"fr_FR": {"License key": "Clé de licence"}})
        self.authenticate("lutece", "lutece")
        page = self.url_open(f"/my/esd/{asset.id}")
        self.assertEqual(page.status_code, 200)
        self.assertIn("Clé de licence", page.text)
        self.assertNotIn(">License key<", page.text)
