"""Prices that follow Microsoft's (issue 31): the catalog's price is the cost, the instance's rule
and the reseller tiers' pricelists price from it, a price change is posted and announced to the
resellers who bought the product, nothing sells below cost unnoticed, margins stay true."""

import datetime
import importlib.util
from unittest.mock import patch

from dateutil.relativedelta import relativedelta

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.modules.module import get_module_path
from odoo.tests import Form, new_test_user, tagged
from odoo.tools import format_amount

from odoo.addons.microsoft_esd.microsoft_esd import prices

from .common import OFFICE, EsdSimulatorCase, customer_company, sell_licenses

WINDOWS = "FQC-10572:en-US"  # Windows 11 Pro, 199.99
VISIO = "D86-05998:en-US"  # Visio Standard 2024, 339.99
ResPartner = type(None)  # set in setUpClass: the registry's class, to watch the extension hook


def tier(env, name, markup, rounding="none"):
    """A reseller tier: a pricelist whose rule is Odoo's formula on cost."""
    price_round, surcharge = prices.rounding_terms(rounding)
    return env["product.pricelist"].create(
        {
            "name": name,
            "sequence": 20,
            "currency_id": env.company.currency_id.id,
            "item_ids": [
                Command.create(
                    {
                        "applied_on": "3_global",
                        "compute_price": "formula",
                        "base": "standard_price",
                        "price_discount": -markup,
                        "price_markup": markup,
                        "price_round": price_round,
                        "price_surcharge": surcharge,
                    }
                )
            ],
        }
    )


@tagged("post_install", "-at_install")
class TestPrices(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        global ResPartner
        ResPartner = type(cls.env["res.partner"])
        cls.currency = cls.env.company.currency_id
        # The company's default pricelist (Odoo makes one when pricelists are enabled): the
        # Sales Price, for everyone without a pricelist of their own.
        cls.public = cls.env["product.pricelist"].create(
            {"name": "Public", "sequence": 1, "currency_id": cls.currency.id}
        )
        cls.gold = tier(cls.env, "Gold resellers", 8, "0.99")
        cls.silver = tier(cls.env, "Silver resellers", 12)
        cls.instance.write(
            {"esd_price_from_cost": True, "esd_price_markup": 25, "esd_price_rounding": "0.99"}
        )
        cls.fabrikam = customer_company(cls.env, "Fabrikam Reseller", esd_role="reseller")
        cls.proseware = customer_company(cls.env, "Proseware Reseller", esd_role="reseller")
        cls.adatum = customer_company(
            cls.env, "Adatum Reseller", esd_role="reseller", esd_price_digest_optout=True
        )
        cls.tailspin = customer_company(cls.env, "Tailspin Reseller", esd_role="reseller")
        (cls.fabrikam | cls.adatum | cls.tailspin).property_product_pricelist = cls.gold
        cls.proseware.property_product_pricelist = cls.silver
        cls.contoso = customer_company(cls.env, "Contoso Ltd")
        cls.northwind = customer_company(cls.env, "Northwind Traders")
        cls.manager = new_test_user(
            cls.env,
            "prices_manager",
            groups="microsoft_esd.group_esd_manager,sales_team.group_sale_salesman_all_leads",
        )
        cls.salesperson = new_test_user(
            cls.env, "prices_sales", groups="sales_team.group_sale_salesman_all_leads"
        )

    # ------------------------------------------------------------------ helpers
    def _sync(self, instance=None):
        return (instance or self.instance)._sync_catalog()

    def _product(self, cis_id, instance=None):
        return self.env["product.template"].search(
            [
                ("esd_product_id", "=", cis_id),
                ("esd_instance_id", "=", (instance or self.instance).id),
            ]
        )

    def _money(self, amount):
        return format_amount(self.env, amount, self.currency)

    def _rule(self, cost, markup, rounding):
        return self.currency.round(prices.rule_price(cost, markup, rounding))

    def _for_sale(self, *cis_ids):
        products = self.env["product.template"].union(*(self._product(i) for i in cis_ids))
        products.action_esd_activate_for_sale()
        return products

    # ------------------------------------------------------------------ cost and rules
    def test_one_sync_prices_every_product_by_its_rule_on_each_tier(self):
        result = self._sync()
        products = result.new_product_ids
        self.assertEqual(len(products), 13)
        # The instance's terms as an Odoo pricelist rule: Odoo gives the same Sales Price.
        same_terms = tier(self.env, "Same terms as the instance", 25, "0.99")
        for product in products:
            cost = product.esd_cis_price
            self.assertEqual(product.standard_price, cost, "USD catalog, USD company")
            self.assertEqual(product.list_price, self._rule(cost, 25, "0.99"), product.name)
            self.assertEqual(same_terms._get_product_price(product, 1.0), product.list_price)
            self.assertAlmostEqual(
                self.gold._get_product_price(product, 1.0), self._rule(cost, 8, "0.99")
            )
            self.assertAlmostEqual(
                self.silver._get_product_price(product, 1.0), cost * 1.12, places=6
            )
            self.assertFalse(product.esd_price_fixed)
            self.assertEqual((product.esd_catalog_status, product.sale_ok), ("new", False))
        office = self._product(OFFICE)
        self.assertEqual((office.standard_price, office.list_price), (149.99, 186.99))
        self.assertAlmostEqual(self.gold._get_product_price(office, 1.0), 161.99)
        # Priced by its rule: the New review step stays, and activation needs nothing more.
        products.action_esd_activate_for_sale()
        self.assertTrue(all(products.mapped("sale_ok")))

    def test_a_new_rule_reprices_the_products_it_prices_and_a_bad_one_is_refused(self):
        self._sync()
        office = self._product(OFFICE)
        self.instance.write({"esd_price_markup": 12, "esd_price_rounding": "1.00"})
        self.assertEqual(office.list_price, 168.0)
        self.assertIn("sells at", self.instance.esd_price_example)
        with self.assertRaisesRegex(ValidationError, "0 % or more"):
            self.instance.write({"esd_price_markup": -5})
        self.assertEqual(office.list_price, 168.0)
        # Without a rule, nothing prices the products: they wait for a price by hand.
        self.instance.esd_price_from_cost = False
        self.admin.catalog("reprice", OFFICE, amount=159.99)
        self._sync()
        self.assertEqual((office.standard_price, office.list_price), (159.99, 168.0))

    def test_a_catalog_in_another_currency_converts_at_the_rate_or_waits_for_one(self):
        cad = self.env.ref("base.CAD")
        cad.active = True
        cad.rate_ids.unlink()
        canada = self.env["esd.instance"].create(
            {
                **self.env["esd.instance"]._esd_values_from_simulator(self.simulator.config_path),
                "name": "CIS Simulator (CA)",
                "country_id": self.env.ref("base.ca").id,
                "esd_price_from_cost": True,
                "esd_price_markup": 25,
            }
        )
        result = self._sync(canada)
        office = self._product(OFFICE, canada)
        self.assertEqual((office.esd_cis_price, office.esd_cis_currency), (203.99, "CAD"))
        self.assertIn("No exchange rate from CAD to USD", result.price_warnings)
        self.assertIn("No exchange rate from CAD", result.summary)
        self.assertEqual((office.standard_price, office.list_price), (0.0, 0.0))
        with self.assertRaisesRegex(UserError, "No sales price yet"):
            office.action_esd_activate_for_sale()
        # A rate is added: the next sync converts Microsoft's price with it.
        self.env["res.currency.rate"].create(
            {"currency_id": cad.id, "rate": 1.25, "name": fields.Date.today()}
        )
        again = self._sync(canada)
        self.assertFalse(again.price_warnings)
        expected = cad._convert(
            203.99, self.currency, self.env.company, fields.Date.today(), round=False
        )
        self.assertAlmostEqual(office.standard_price, expected, places=2)
        self.assertAlmostEqual(expected, 203.99 / 1.25, places=6)
        self.assertEqual(office.list_price, self._rule(office.standard_price, 25, "0.99"))
        self.assertFalse(again.price_change_ids, "a first price is not a price change")
        # Microsoft's new price while the rate is missing again: the cost stays, and the change
        # is recorded by the sync that can convert it.
        cad.rate_ids.unlink()
        self.admin.catalog("reprice", OFFICE, amount=250.0, country="CA")
        cost = office.standard_price
        third = self._sync(canada)
        self.assertIn("No exchange rate from CAD", third.price_warnings)
        self.assertFalse(third.price_change_ids)
        self.assertEqual((office.standard_price, office.esd_cis_price), (cost, 203.99))
        self.env["res.currency.rate"].create(
            {"currency_id": cad.id, "rate": 1.25, "name": fields.Date.today()}
        )
        fourth = self._sync(canada)
        self.assertEqual(fourth.price_change_ids.product_tmpl_id, office)
        self.assertAlmostEqual(office.standard_price, 200.0, places=2)

    def test_a_price_typed_by_hand_stays_and_below_cost_is_reported(self):
        self._sync()
        office, visio = self._product(OFFICE), self._product(VISIO)
        office.list_price = 150.0
        self.assertTrue(office.esd_price_fixed, "a Sales Price typed by hand stays")
        self.assertFalse(office.esd_below_cost)
        self.admin.catalog("reprice", OFFICE, amount=159.99)
        self.admin.catalog("reprice", VISIO, amount=349.99)
        result = self._sync()
        self.assertEqual((office.standard_price, office.list_price), (159.99, 150.0))
        self.assertEqual(visio.list_price, self._rule(349.99, 25, "0.99"), "the rule's")
        self.assertTrue(office.esd_below_cost)
        self.assertEqual(result.below_cost_product_ids, office)
        self.assertIn("Priced below their new cost: 1", result.summary)
        self.assertIn(office, self.env["product.template"].search([("esd_below_cost", "=", True)]))
        note = office.message_ids[0].body
        self.assertIn("Sales Price (fixed by hand)", note)
        self.assertIn("below cost", note)
        # Handed back to the rule, by an ESD manager in bulk, or by unticking the box.
        office.with_user(self.manager).action_esd_price_from_rule()
        self.assertEqual((office.esd_price_fixed, office.list_price), (False, 199.99))
        office.list_price = 180.0
        office.esd_price_fixed = False
        self.assertEqual(office.list_price, 199.99)
        with self.assertRaises(AccessError):
            office.with_user(self.salesperson).action_esd_price_from_rule()
        self.instance.esd_price_from_cost = False
        with self.assertRaisesRegex(UserError, "has no sales price rule"):
            office.with_user(self.manager).action_esd_price_from_rule()

    # ------------------------------------------------------------------ a price change
    def test_a_price_change_is_posted_and_announced_to_the_resellers_who_bought(self):
        self._sync()
        office, windows = self._for_sale(OFFICE, WINDOWS)
        sell_licenses(self.env, office, self.fabrikam, 1, self.northwind)
        sell_licenses(self.env, office, self.adatum, 1, self.northwind)  # opted out
        sell_licenses(self.env, windows, self.proseware, 1, self.northwind)
        old = sell_licenses(self.env, office, self.tailspin, 1, self.northwind)
        old.sudo().purchase_date = fields.Date.today() - relativedelta(months=13)
        sell_licenses(self.env, office, self.contoso, 1)  # a direct customer: no digest
        self.admin.catalog("reprice", OFFICE, amount=159.99)
        result = self._sync()
        change = result.price_change_ids
        self.assertEqual(change.product_tmpl_id, office)
        self.assertIn("Price changes from Microsoft: 1", result.summary)
        self.assertRecordValues(
            change,
            [
                {
                    "cis_price_old": 149.99,
                    "cis_price_new": 159.99,
                    "cost_old": 149.99,
                    "cost_new": 159.99,
                    "list_price_old": 186.99,
                    "list_price_new": 199.99,
                    "announced": False,
                }
            ],
        )
        self.assertAlmostEqual(change.change_percent, 6.7, places=1)
        gold = change.line_ids.filtered(lambda line: line.pricelist_id == self.gold)
        self.assertEqual((gold.price_old, gold.price_new), (161.99, 172.99))
        silver = change.line_ids.filtered(lambda line: line.pricelist_id == self.silver)
        self.assertAlmostEqual(silver.price_new, 159.99 * 1.12, places=2)
        note = office.message_ids[0].body
        for text in ("149.99", "159.99", "186.99", "199.99", "Gold resellers", "172.99"):
            self.assertIn(text, note)
        self.assertEqual(self.instance.overview_price_changes_count, 1)
        action = self.instance.with_user(self.manager).action_esd_overview_price_changes()
        self.assertEqual(self.env["esd.price.change"].search(action["domain"]), change)
        # The digest job: one email per reseller that bought the product in the last 12 months.
        with patch.object(ResPartner, "_esd_price_changes_announced", autospec=True) as hook:
            self.env["esd.price.change"]._esd_announce_pending()
        digests = self.env["esd.price.digest"].search(
            [("correlation_id", "=", change.correlation_id)]
        )
        self.assertEqual(
            {(d.partner_id, d.state) for d in digests},
            {(self.fabrikam, "sent"), (self.adatum, "opted_out")},
        )
        self.assertTrue(change.announced)
        fabrikam = digests.filtered(lambda d: d.partner_id == self.fabrikam)
        self.assertEqual((fabrikam.pricelist_id, fabrikam.line_ids), (self.gold, gold))
        mails = self.env["mail.mail"].search(
            [("model", "=", "esd.price.digest"), ("res_id", "in", digests.ids)]
        )
        self.assertEqual(mails.recipient_ids, self.fabrikam, "one email, to Fabrikam only")
        self.assertFalse(mails.email_to or mails.email_cc)
        for text in ("Office Home 2024", "161.99", "172.99"):
            self.assertIn(text, mails.body_html)
        for secret in ("159.99", "149.99", "199.99"):  # the cost, and another tier's price
            self.assertNotIn(secret, mails.body_html)
        self.assertIn("Office Home 2024", self.fabrikam.message_ids[0].body)
        # The extension hook (the reseller API's price.changed webhook): once per reseller.
        called = {call.args[0]: call.args[1] for call in hook.call_args_list}
        self.assertEqual(set(called), {self.fabrikam, self.adatum})
        self.assertEqual(
            called[self.fabrikam],
            [
                {
                    "product_tmpl_id": office.id,
                    "esd_product_id": OFFICE,
                    "name": office.name,
                    "instance_id": self.instance.id,
                    "pricelist_id": self.gold.id,
                    "currency": self.currency.name,
                    "old_price": 161.99,
                    "new_price": 172.99,
                    "changed_at": fields.Datetime.to_string(change.date),
                }
            ],
        )
        # Another company's ESD people read none of it; a salesperson neither.
        branch = self.env["res.company"].create({"name": "ESD Branch"})
        other = new_test_user(
            self.env,
            "prices_other_manager",
            groups="microsoft_esd.group_esd_manager",
            company_id=branch.id,
            company_ids=[Command.set(branch.ids)],
        )
        for user in (other, self.salesperson):
            for records in (change, change.line_ids, digests):
                with self.assertRaises(AccessError):
                    records.with_user(user).read(["company_id"])
        # Announced once: the job finds nothing more.
        self.env["esd.price.change"]._esd_announce_pending()
        self.assertEqual(self.env["esd.price.digest"].search_count([]), 2)

    def test_each_company_words_its_own_price_change_email(self):
        action = self.instance.with_user(self.manager).action_esd_edit_price_digest_template()
        template = self.env["mail.template"].browse(action["res_id"])
        shared = self.env.ref("microsoft_esd.mail_template_esd_price_digest")
        self.assertEqual(
            (template.esd_company_id, template.model), (self.env.company, shared.model)
        )
        template.with_user(self.manager).write(
            {"subject": "Our new prices, {{ object.partner_id.name }}"}
        )
        with self.assertRaises(AccessError):  # wording, never code
            template.with_user(self.manager).write({"subject": "{{ object.env.cr.dbname }}"})
        with self.assertRaises(AccessError):  # the shared one is the administrators'
            shared.with_user(self.manager).write({"subject": "Mine"})
        branch = self.env["res.company"].create({"name": "ESD Branch"})
        with self.assertRaises(AccessError):  # nor may a copy move to another company
            template.with_user(self.manager).write({"esd_company_id": branch.id})
        other = new_test_user(
            self.env,
            "prices_branch_manager",
            groups="microsoft_esd.group_esd_manager",
            company_id=branch.id,
            company_ids=[Command.set(branch.ids)],
        )
        with self.assertRaises(AccessError):
            template.with_user(other).write({"subject": "Theirs"})
        with self.assertRaises(AccessError):
            self.instance.with_user(other).action_esd_edit_price_digest_template()
        # The company's wording is what its resellers receive.
        self._sync()
        (office,) = self._for_sale(OFFICE)
        sell_licenses(self.env, office, self.fabrikam, 1, self.northwind)
        self.admin.catalog("reprice", OFFICE, amount=159.99)
        self._sync()
        self.env["esd.price.change"]._esd_announce_pending()
        digest = self.env["esd.price.digest"].search([("partner_id", "=", self.fabrikam.id)])
        mail = self.env["mail.mail"].search(
            [("model", "=", "esd.price.digest"), ("res_id", "=", digest.id)]
        )
        self.assertEqual(mail.subject, "Our new prices, Fabrikam Reseller")

    def test_an_unchanged_price_is_no_change_and_announces_nothing(self):
        self._sync()
        self.admin.catalog("rename", OFFICE, title="Office Home 2024 (renamed)")
        result = self._sync()
        self.assertEqual(result.updated_product_ids, self._product(OFFICE))
        self.assertFalse(result.price_change_ids)
        self.assertNotIn("price changes", result.summary)

    # ------------------------------------------------------------------ cost at the sale, margins
    def test_the_license_records_its_cost_and_the_analysis_shows_margins_before_and_after(self):
        self._sync()
        (office,) = self._for_sale(OFFICE)
        before = sell_licenses(self.env, office, self.contoso, 2)
        sell_licenses(self.env, office, self.fabrikam, 1, self.northwind)  # Gold: 161.99
        last_month = fields.Date.today().replace(day=1) - datetime.timedelta(days=1)
        (before | self.env["esd.asset"].search([("billing_partner_id", "=", self.fabrikam.id)]))
        self.env["esd.asset"].search([]).sudo().purchase_date = last_month
        self.assertEqual(before.mapped("cost_unit"), [149.99, 149.99])
        self.assertEqual(before.mapped("margin"), [37.0, 37.0])
        self.admin.catalog("reprice", OFFICE, amount=159.99)
        self._sync()
        after = sell_licenses(self.env, office, self.contoso, 1)
        self.assertEqual(before.mapped("cost_unit"), [149.99, 149.99], "its cost at the sale")
        self.assertEqual((after.cost_unit, after.price_unit, after.margin), (159.99, 199.99, 40.0))
        with self.assertRaises(AccessError):
            after.with_user(self.manager).write({"cost_unit": 1.0})
        # License Analysis, per month: the margin before and after Microsoft's change.
        Asset = self.env["esd.asset"]
        groups = Asset._read_group(
            [("product_id.product_tmpl_id", "=", office.id)],
            ["purchase_date:month"],
            ["net_revenue:sum", "net_cost:sum", "margin:sum", "margin_percent:avg"],
        )
        (
            (_month, revenue, cost, margin, percent),
            (_month2, _revenue2, _cost2, margin2, percent2),
        ) = groups
        self.assertAlmostEqual(revenue, 186.99 * 2 + 161.99)
        self.assertAlmostEqual(cost, 149.99 * 3)
        self.assertAlmostEqual(margin, 37.0 * 2 + 12.0)
        self.assertAlmostEqual(percent, 100.0 * margin / revenue, places=6)
        self.assertAlmostEqual((margin2, percent2), (40.0, 100.0 * 40.0 / 199.99))
        # Per tier (the order's pricelist) and per reseller.
        by_tier = dict(
            Asset._read_group(
                [("product_id.product_tmpl_id", "=", office.id)], ["pricelist_id"], ["margin:sum"]
            )
        )
        self.assertAlmostEqual(by_tier[self.gold], 12.0)
        by_reseller = dict(Asset._read_group([], ["billing_partner_id"], ["margin_percent:avg"]))
        self.assertAlmostEqual(by_reseller[self.fabrikam], 100.0 * 12.0 / 161.99)
        # The overview's margin of this month: the license sold after the change.
        self.assertAlmostEqual(self.instance.overview_margin_month_amount, 40.0)
        self.assertAlmostEqual(self.instance.overview_margin_month_percent, 20.0, places=1)

    # ------------------------------------------------------------------ below cost, backend
    def _quotation(self, user, product, price):
        form = Form(self.env["sale.order"].with_user(user))
        form.partner_id = self.contoso
        with self.assertLogs("odoo.tests.form.onchange", "WARNING") as warned:
            with form.order_line.new() as line:
                line.product_id = product.product_variant_id
                line.price_unit = price
        return form.save(), " ".join(warned.output)

    def test_below_cost_warns_in_the_backend_and_an_esd_manager_may_allow_it(self):
        self._sync()
        (office,) = self._for_sale(OFFICE)
        order, warning = self._quotation(self.salesperson, office, 100.0)
        self.assertIn("Office Home 2024 - English - ESD sells below cost", warning)
        self.assertIn(f"price {self._money(100)}, cost {self._money(149.99)}", warning)
        self.assertIn(
            f"sells below cost: price {self._money(100)}, cost {self._money(149.99)}.",
            order.esd_below_cost_warning,
        )
        self.assertFalse(order.esd_below_cost_allowed)
        # A salesperson may not allow it, over RPC either...
        with self.assertRaises(AccessError):
            order.with_user(self.salesperson).action_esd_allow_below_cost()
        with self.assertRaises(AccessError):
            order.with_user(self.salesperson).write({"esd_below_cost_allowance": {"1": 0.0}})
        # ... but may confirm, and the chatter says so.
        order.with_user(self.salesperson).action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertIn("with licenses below cost", order.message_ids[0].body)
        self.assertIn("price $&nbsp;100.00, cost $&nbsp;149.99", order.message_ids[0].body)
        # An ESD manager allows another quotation at its prices; a lower price needs another.
        second, _warning = self._quotation(self.salesperson, office, 120.0)
        second.with_user(self.manager).action_esd_allow_below_cost()
        self.assertIn("allowed selling these licenses below cost", second.message_ids[0].body)
        self.assertEqual((second.esd_below_cost_warning, second.esd_below_cost_allowed), ("", True))
        self.assertFalse(second._esd_below_cost_refusals())
        second.order_line.price_unit = 110.0
        self.assertIn(f"price {self._money(110)}", second.esd_below_cost_warning)
        self.assertTrue(second._esd_below_cost_refusals())
        second.order_line.price_unit = 190.0
        self.assertFalse(second.esd_below_cost_warning)
        with self.assertRaisesRegex(UserError, "nothing to allow"):
            second.with_user(self.manager).action_esd_allow_below_cost()
        # Another company's ESD manager acts on its own company's orders only.
        branch = self.env["res.company"].create({"name": "ESD Branch"})
        other = new_test_user(
            self.env,
            "prices_other_manager",
            groups="microsoft_esd.group_esd_manager",
            company_id=branch.id,
            company_ids=[Command.set(branch.ids)],
        )
        second.order_line.price_unit = 90.0
        allowed = dict(second.sudo().esd_below_cost_allowance)
        with self.assertRaises(AccessError):
            second.with_user(other).action_esd_allow_below_cost()
        self.assertEqual(second.sudo().esd_below_cost_allowance, allowed)
        self.assertTrue(second.esd_below_cost_warning)

    # ------------------------------------------------------------------ the upgrade
    def test_the_upgrade_gives_products_and_licenses_a_cost(self):
        """Databases before 18.0.1.7.0: products without a cost, prices typed by hand, licenses
        without a cost."""
        self.instance.esd_price_from_cost = False
        self._sync()
        office = self._product(OFFICE)
        office.list_price = 200.0
        (asset,) = sell_licenses(self.env, office.with_context(), self.contoso, 1)
        windows = self._product(WINDOWS)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE product_template SET esd_price_fixed = NULL WHERE id IN %s",
            [(office.id, windows.id)],
        )
        self.env.cr.execute(
            "UPDATE product_product SET standard_price = NULL WHERE product_tmpl_id IN %s",
            [(office.id, windows.id)],
        )
        self.env.cr.execute(
            "UPDATE esd_asset SET cost_unit = NULL, net_cost = 0, margin = 0 WHERE id = %s",
            [asset.id],
        )
        self.env.invalidate_all()
        self.assertEqual((office.standard_price, asset.cost_unit), (0.0, 0.0))
        path = get_module_path("microsoft_esd") + "/migrations/18.0.1.7.0/post-prices.py"
        spec = importlib.util.spec_from_file_location("esd_migration_1_7", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(self.env.cr, "18.0.1.6.0")
        self.env.invalidate_all()
        self.assertEqual((office.standard_price, windows.standard_price), (149.99, 199.99))
        self.assertEqual((office.esd_price_fixed, windows.esd_price_fixed), (True, False))
        self.assertEqual((asset.cost_unit, asset.margin), (149.99, 50.01))
        self.assertEqual(office.list_price, 200.0, "a price typed by hand stays")
