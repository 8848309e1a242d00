"""What an integrator does first, as the web client does it (issue 33): the instance, Settings
and the uninstall wizard through their forms (Odoo's Form runs the client's onchange and honours
readonly fields), then the same path clicked in Chromium (tours)."""

import base64
import json

from odoo.tests import Form, HttpCase, new_test_user, tagged
from odoo.tools import config, mute_logger

from .common import (
    EsdSimulatorCase,
    connected_instance,
    office_for_sale,
    sell_licenses,
    start_simulator,
)

SECRET = "v4lid-esd-t0ken-key-For-the-integrator-tour-2026"
OLD_SECRET = "0ld-esd-t0ken-key-Before-the-rotation-of-2026-99"


def instance_values(config_path):
    """What CONFIGURE tells the integrator to type: the simulator's instance.json."""
    with open(config_path, encoding="utf-8") as handle:
        values = json.load(handle)
    with open(values["certificate_path"], "rb") as handle:
        values["certificate"] = base64.b64encode(handle.read()).decode()
    return values


@tagged("post_install", "-at_install")
class TestIntegratorForms(EsdSimulatorCase):
    def _fill_connection(self, form, values):
        form.name = "Contoso US"
        form.service_url = values["service_url"]
        form.resource_api = values["resource_api"]
        form.tenant = values["tenant"]
        form.channel_id = values["channel_id"]
        form.client_id = values["client_id"]
        form.authority = values["authority"]
        form.ca_bundle = values["ca_bundle"]

    def test_an_administrator_creates_an_instance_in_its_form(self):
        admin = self.env.ref("base.user_admin")
        values = instance_values(self.simulator.config_path)
        form = Form(self.env["esd.instance"].with_user(admin))
        self.assertTrue(form.can_edit_routing)
        self._fill_connection(form, values)
        instance = form.save()
        self.assertEqual(instance.service_url, values["service_url"])
        # Step two, in the saved form: the file first, then its password; then without one.
        form = Form(instance)
        form.certificate_file = values["certificate"]
        self.assertIn("password is wrong", form.certificate_error)
        form.certificate_password = values["certificate_password"]
        self.assertFalse(form.certificate_error)
        form.country_id = self.env.ref("base.us")
        form.save()
        self.assertTrue(instance.thumbprint)
        instance.action_test_connection()
        self.assertEqual(instance.state, "connected")

    def test_only_administrators_type_where_tokens_go(self):
        manager = new_test_user(self.env, "int_mgr", groups="microsoft_esd.group_esd_manager")
        form = Form(self.env["esd.instance"].with_user(manager))
        self.assertFalse(form.can_edit_routing)
        with self.assertRaises(AssertionError):  # read-only in the form
            form.service_url = "https://elsewhere.example"

    def _settings(self, secret):
        self.patch(config, "options", dict(config.options, esd_token_key=secret))
        self.env.invalidate_all()
        return Form(self.env["res.config.settings"])

    def test_settings_tell_the_state_of_keys_at_rest_in_the_form(self):
        settings = self._settings("")
        self.assertFalse(settings.esd_keys_encrypted)
        self.assertFalse(settings.esd_keys_error)
        settings = self._settings(SECRET)
        self.assertTrue(settings.esd_keys_encrypted)
        with mute_logger("odoo.addons.microsoft_esd.models.esd_asset"):
            settings = self._settings("tooshort123")
        self.assertIn("too weak", settings.esd_keys_error)
        self.assertIn("at least 32 random characters", settings.esd_keys_error)

    def test_the_uninstall_wizard_asks_for_the_count_it_checks(self):
        wizard = Form(self.env["esd.uninstall"])
        count = self.env["esd.uninstall"]._esd_delivered_count()
        self.assertEqual(wizard.license_count, count)
        self.assertEqual(wizard.phrase, f"DELETE {count} LICENSES")


@tagged("post_install", "-at_install")
class TestIntegratorTours(HttpCase):
    """The configuration path clicked in Chromium as a system administrator does it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        start_simulator(cls)
        # A system administrator of its own: the shared admin's browser would also receive the
        # notifications that other tests' committed data left for it.
        cls.integrator = new_test_user(
            cls.env,
            "integrator",
            groups="base.group_system,sales_team.group_sale_manager,microsoft_esd.group_esd_manager",
            name="Ina Integrator",
        )

    def _secret(self, secret):
        self.patch(config, "options", dict(config.options, esd_token_key=secret))

    def test_an_instance_is_created_connected_and_its_catalog_sold(self):
        values = instance_values(self.simulator.config_path)
        self.env["ir.config_parameter"].set_param(
            "microsoft_esd.tour_instance_json", json.dumps(values)
        )
        self.start_tour(
            "/odoo/action-microsoft_esd.action_esd_instance",
            "esd_instance_setup_tour",
            login="integrator",
            timeout=180,
        )
        instance = self.env["esd.instance"].search([("name", "ilike", "Contoso US")])
        self.assertEqual(len(instance), 1, "the tour created one instance")
        self.assertEqual(instance.state, "connected")
        self.assertEqual(instance.country_id, self.env.ref("base.us"))
        sold = self.env["product.template"].search(
            [("esd_instance_id", "=", instance.id), ("sale_ok", "=", True)]
        )
        self.assertEqual(len(sold), 2)
        self.assertTrue(all(sold.mapped("is_published")))
        self.assertEqual(set(sold.mapped("list_price")), {149.0})

    def test_settings_tell_each_state_of_keys_at_rest(self):
        self._secret("")
        self.start_tour("/odoo/settings", "esd_settings_keys_clear_tour", login="integrator")
        self._secret(SECRET)
        self.start_tour("/odoo/settings", "esd_settings_keys_encrypted_tour", login="integrator")
        self._secret("tooshort123")
        with mute_logger("odoo.addons.microsoft_esd.models.esd_asset"):
            self.start_tour("/odoo/settings", "esd_settings_keys_weak_tour", login="integrator")

    def test_settings_reencrypt_after_a_rotation(self):
        self._secret(OLD_SECRET)
        connected_instance(self.env, self.simulator.config_path)
        office = office_for_sale(self.env)
        customer = self.env["res.partner"].create(
            {
                "name": "Rotation Ltd",
                "is_company": True,
                "email": "it@rotation.example",
                "country_id": self.env.ref("base.us").id,
            }
        )
        assets = sell_licenses(self.env, office, customer, 2)
        self._secret(f"{SECRET},{OLD_SECRET}")
        self.start_tour("/odoo/settings", "esd_settings_keys_rotation_tour", login="integrator")
        vault = self.env["esd.asset"]._esd_vault()
        self.assertTrue(all(vault.is_current(a.sudo().token_sealed) for a in assets))
