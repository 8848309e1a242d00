import base64
import datetime
import socket

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12
from psycopg2 import IntegrityError

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.neutralize import get_neutralization_queries
from odoo.tests import Form, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.microsoft_esd.microsoft_esd.certificate import certificate_not_after
from odoo.addons.microsoft_esd.microsoft_esd.simulator import pki

from .common import EsdSimulatorCase

ACTIVE_SEEDED = 13  # the seeded catalog lists 16 products, 3 of them discontinued


@tagged("post_install", "-at_install")
class TestEsdInstance(EsdSimulatorCase):
    def _products(self, instance=None):
        return (
            self.env["product.template"]
            .with_context(active_test=False)
            .search([("esd_instance_id", "=", (instance or self.instance).id)])
        )

    def test_connection_and_certificate(self):
        self.assertEqual(self.instance.state, "connected")
        with open(self.sim_config.certificate_path, "rb") as handle:
            pfx = handle.read()
        _key, x509_cert, _ = pkcs12.load_key_and_certificates(
            pfx, self.sim_config.certificate_password.encode()
        )
        self.assertEqual(
            self.instance.thumbprint, x509_cert.fingerprint(hashes.SHA1()).hex().upper()
        )
        self.assertEqual(self.instance.certificate_expiry, certificate_not_after(x509_cert))
        self.assertIn("Connection test succeeded", self.instance.message_ids[0].body)

    def test_a_rate_limit_paces_the_instances_client_and_cannot_be_negative(self):
        self.assertIsNone(self.instance._cis_client().pacer)  # 0: no limit, no pace
        self.instance.rate_limit = 12.5
        pacer = self.instance._cis_client().pacer
        # 12 in each second of the clock, 1/15 s apart in its first 0.8 s
        schedule = pacer.schedule
        self.assertEqual((pacer.rate, schedule.per_second), (12.5, 12))
        self.assertAlmostEqual(schedule.interval, 1 / 15)
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            self.instance.rate_limit = -1
            self.env.flush_all()

    def test_wrong_password_is_refused_and_not_echoed(self):
        with self.assertRaisesRegex(ValidationError, "password is wrong") as caught:
            self.instance.write({"certificate_password": "Sup3rSecret!"})
        self.assertNotIn("Sup3rSecret!", str(caught.exception))

    def test_unregistered_certificate_fails_the_connection_test(self):
        cert, key = pki.make_self_signed_client("not registered")
        instance = self.instance.copy({"name": "Other cert"})
        instance.write(
            {
                "certificate_file": base64.b64encode(pki.pfx_bytes(cert, key, "pw")),
                "certificate_password": "pw",
                "country_id": self.instance.country_id.id,
            }
        )
        action = instance.action_test_connection()
        self.assertEqual(action["params"]["type"], "danger")
        self.assertEqual(instance.state, "error")
        self.assertIn("not registered", instance.last_error)
        self.assertIn("Other cert", instance.last_error)

    def test_credentials_are_for_system_administrators_only(self):
        manager = new_test_user(self.env, "esd_mgr", groups="microsoft_esd.group_esd_manager")
        instance = self.instance.with_user(manager)
        self.assertTrue(instance.thumbprint)
        with self.assertRaises(AccessError):
            instance.read(["certificate_password"])
        with self.assertRaises(AccessError):
            instance.read(["certificate_file"])

    def test_changing_the_connection_needs_a_new_test(self):
        self.instance.write({"channel_id": "CH-OTHER"})
        self.assertEqual(self.instance.state, "draft")

    def test_first_sync_then_unchanged_resync_writes_nothing(self):
        result = self.instance._sync_catalog()
        products = self._products()
        self.assertEqual(len(products), ACTIVE_SEEDED)
        self.assertEqual(
            (result.new_count, result.updated_count, result.discontinued_count),
            (ACTIVE_SEEDED, 0, 0),
        )
        office = products.filtered(lambda p: p.esd_product_id == "EP2-06606:en-US")
        self.assertRecordValues(
            office,
            [
                {
                    "name": "Office Home 2024 - English - ESD",
                    "default_code": "EP2-06606:en-US",
                    "esd_catalog_status": "new",
                    "sale_ok": False,
                    "type": "service",
                    "invoice_policy": "delivery",
                    "list_price": 0.0,
                    "esd_cis_price": 149.99,
                    "is_esd": True,
                }
            ],
        )
        self.assertIn("13 new", self.instance.message_ids[0].body)
        # The three products CIS lists as discontinued are counted, not created (issue 33).
        self.assertEqual(result.skipped_count, 3)
        self.assertIn("3 discontinued at Microsoft and not created", result.summary)
        # Backdate every product, then re-sync: a write of any product would move its write_date.
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE product_template SET write_date = '2001-01-01' WHERE esd_instance_id = %s",
            [self.instance.id],
        )
        self.env.invalidate_all()
        again = self.instance._sync_catalog()
        self.env.flush_all()
        self.assertEqual(
            (again.new_count, again.updated_count, again.discontinued_count), (0, 0, 0)
        )
        self.assertEqual(again.unchanged_count, ACTIVE_SEEDED)
        self.env.invalidate_all()
        self.assertEqual(
            set(self._products().mapped("write_date")), {datetime.datetime(2001, 1, 1)}
        )

    def test_catalog_changes_reprice_discontinue_add_remove(self):
        self.instance._sync_catalog()
        products = {p.esd_product_id: p for p in self._products()}
        products["D86-05998:en-US"].write({"list_price": 400})
        products["D86-05998:en-US"].action_esd_activate_for_sale()
        self.assertTrue(products["D86-05998:en-US"].sale_ok)
        self.admin.catalog("reprice", "EP2-06606:en-US", amount=139.99)
        self.admin.catalog("discontinue", "D86-05998:en-US")
        self.admin.catalog("remove", "KW9-00664:en-US")
        self.admin.catalog(
            "add", "NEW-00001:en-US", title="Office Copilot 2026 - English - ESD", amount=99
        )
        result = self.instance._sync_catalog()
        self.assertEqual(result.new_product_ids.esd_product_id, "NEW-00001:en-US")
        self.assertEqual(result.updated_product_ids, products["EP2-06606:en-US"])
        self.assertEqual(
            result.discontinued_product_ids,
            products["D86-05998:en-US"] | products["KW9-00664:en-US"],
        )
        self.assertEqual(products["EP2-06606:en-US"].esd_cis_price, 139.99)
        self.assertEqual(products["EP2-06606:en-US"].esd_catalog_status, "new")  # never reviewed
        self.assertRecordValues(
            products["D86-05998:en-US"], [{"esd_catalog_status": "discontinued", "sale_ok": False}]
        )
        action = result.action_open_discontinued()
        self.assertEqual(
            self.env["product.template"].with_context(active_test=False).search(action["domain"]),
            result.discontinued_product_ids,
        )

    def test_two_instances_two_countries_keep_separate_products(self):
        self.env["res.lang"]._activate_lang("de_DE")
        german = self.instance.copy(
            {"name": "CIS Deutschland", "country_id": self.env.ref("base.de").id, "lang": "de_DE"}
        )
        german.write(
            {
                "certificate_file": self.instance.sudo().certificate_file,
                "certificate_password": self.instance.sudo().certificate_password,
                "ca_bundle": self.instance.sudo().ca_bundle,
            }
        )
        german.action_test_connection()
        self.instance._sync_catalog()
        german._sync_catalog()
        us, de = self._products(), self._products(german)
        self.assertEqual(len(us), ACTIVE_SEEDED)
        self.assertEqual(len(de), ACTIVE_SEEDED)
        self.assertFalse(us & de)
        office_de = de.filtered(lambda p: p.esd_sku == "EP2-06606-DE")
        self.assertEqual(
            office_de.with_context(lang="de_DE").name, "Office Home 2024 - Deutsch - ESD"
        )
        self.assertEqual(office_de.esd_cis_currency, "EUR")
        self.assertEqual(german.product_count, ACTIVE_SEEDED)

    def test_failures_leave_the_catalog_exactly_as_it_was(self):
        self.instance._sync_catalog()
        before = {p.id: (p.name, p.esd_cis_price, p.esd_catalog_status) for p in self._products()}
        self.admin.catalog("reprice", "EP2-06606:en-US", amount=1.0)
        # A malformed body on every catalog page, after the retries: nothing may be half-applied.
        self.admin.faults(malformed=50, paths="catalog")
        with self.assertRaisesRegex(UserError, "The catalog was not changed"):
            self.instance._sync_catalog()
        self.admin.clear_faults()
        # The service is unreachable.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.instance.write({"service_url": f"https://127.0.0.1:{port}"})
        with self.assertRaisesRegex(UserError, r"cannot connect to CIS at 127\.0\.0\.1:\d+"):
            self.instance._sync_catalog()
        after = {p.id: (p.name, p.esd_cis_price, p.esd_catalog_status) for p in self._products()}
        self.assertEqual(before, after)

    def test_activate_for_sale_needs_a_price_and_an_active_product(self):
        self.instance._sync_catalog()
        products = self._products()
        with self.assertRaisesRegex(UserError, "No sales price yet"):
            products.action_esd_activate_for_sale()
        self.assertFalse(any(products.mapped("sale_ok")))
        # One priced product among unpriced ones: it is activated, the others are named.
        priced, unpriced = products[:1], products[1:]
        priced.list_price = 100
        action = products.action_esd_activate_for_sale()
        self.assertEqual(action["params"]["type"], "warning")
        self.assertIn(unpriced[0].display_name, action["params"]["message"])
        self.assertTrue(priced.sale_ok)
        self.assertFalse(any(unpriced.mapped("sale_ok")))
        products.write({"list_price": 100})
        products.action_esd_activate_for_sale()
        self.assertEqual(set(products.mapped("esd_catalog_status")), {"active"})
        self.assertTrue(all(products.mapped("sale_ok")))

    def test_neutralized_copy_cannot_order(self):
        for query in get_neutralization_queries(["microsoft_esd"]):
            self.env.cr.execute(query)
        self.env.invalidate_all()
        instance = self.instance.with_context(active_test=False)
        self.assertRecordValues(
            instance, [{"active": False, "state": "draft", "client_id": "neutralized"}]
        )
        self.assertFalse(instance.sudo().certificate_file)
        with self.assertRaisesRegex(UserError, "has no certificate"):
            instance._esd_config()

    def test_expiring_certificate_plans_one_activity_per_manager(self):
        soon = fields.Datetime.now() - datetime.timedelta(days=700)  # 730-day cert: ~30 days left
        cert, key = pki.make_self_signed_client(
            "expiring", days=720, not_before=soon.replace(tzinfo=datetime.timezone.utc)
        )
        instance = self.env["esd.instance"].create(
            {
                "name": "Expiring",
                "resource_api": "https://api.example.test",
                "service_url": "https://cis.example.test",
                "tenant": "t",
                "channel_id": "c",
                "client_id": "x",
            }
        )
        instance.write(
            {
                "certificate_file": base64.b64encode(pki.pfx_bytes(cert, key, "pw")),
                "certificate_password": "pw",
            }
        )
        self.assertTrue(instance.certificate_expiring)
        self.env["esd.instance"]._cron_check_certificates()
        self.env["esd.instance"]._cron_check_certificates()
        managers = self.env.ref("microsoft_esd.group_esd_manager").users.filtered(
            lambda u: not u.share and u != self.env.ref("base.user_root")
        )
        self.assertTrue(managers)
        self.assertEqual(instance.activity_ids.user_id, managers)
        self.assertEqual(len(instance.activity_ids), len(managers))
        self.assertFalse(self.instance.activity_ids)  # a long-lived certificate plans nothing

    def test_instances_of_another_company_are_invisible(self):
        other = self.env["res.company"].create({"name": "Other Co"})
        foreign = self.instance.copy({"name": "Foreign", "company_id": other.id})
        manager = new_test_user(
            self.env,
            "esd_mgr2",
            groups="microsoft_esd.group_esd_manager",
            company_id=self.env.company.id,
        )
        visible = self.env["esd.instance"].with_user(manager).search([])
        self.assertIn(self.instance, visible)
        self.assertNotIn(foreign, visible)

    def test_settings_count_and_open_the_instances(self):
        settings = Form(self.env["res.config.settings"])
        self.assertEqual(settings.esd_instance_count, 1)
        self.assertEqual(settings.esd_connected_count, 1)
        action = settings.save().action_open_esd_instances()
        self.assertEqual(action["res_model"], "esd.instance")
