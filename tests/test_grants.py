"""Key holders are grants (issue 29): given for one company by its ESD managers, ended by any move
of the contact or its company, an email or login change, a merge, a re-invitation or an archive."""

import importlib.util

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.modules.module import get_module_path
from odoo.tests import new_test_user, tagged

from .common import (
    EsdSimulatorCase,
    allow_keys,
    customer_company,
    office_for_sale,
    outgoing_body,
    secrets_of,
    sell_licenses,
)


@tagged("post_install", "-at_install")
class TestGrants(EsdSimulatorCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.instance._sync_catalog()
        cls.office = office_for_sale(cls.env)
        cls.customer = customer_company(cls.env)
        (cls.asset,) = sell_licenses(cls.env, cls.office, cls.customer, 1)
        cls.manager = new_test_user(cls.env, "grant_mgr", groups="microsoft_esd.group_esd_manager")
        cls.clerk = new_test_user(
            cls.env, "grant_clerk", groups="base.group_user,base.group_partner_manager"
        )

    def _holder(self, login="grant_holder", company=None):
        portal = new_test_user(
            self.env, login, groups="base.group_portal", email=f"{login}@x.example"
        )
        portal.partner_id.parent_id = company or self.customer
        allow_keys(self.env, portal)
        self.assertTrue(self.asset.with_user(portal).key_visible)
        return portal

    def _ended(self, portal, why):
        self.assertFalse(self.asset.with_user(portal).key_visible)
        grant = (
            self.env["esd.grant"]
            .with_context(active_test=False)
            .search([("user_id", "=", portal.id)])
        )
        self.assertTrue(grant and not any(grant.mapped("active")))
        self.assertIn(why, " ".join(grant.mapped("end_reason")))
        self.assertIn(why, " ".join(str(b) for b in portal.partner_id.message_ids.mapped("body")))

    # ------------------------------------------------------------------ what ends a grant
    def test_an_email_changed_by_a_contact_editor_ends_the_grant(self):
        portal = self._holder()
        portal.partner_id.with_user(self.clerk).email = "attacker@evil.example"
        self._ended(portal, "email changed")

    def test_an_invitation_again_ends_the_grant(self):
        portal = self._holder()
        wizard = (
            self.env["portal.wizard"]
            .with_user(self.clerk)
            .with_context(active_ids=portal.partner_id.ids)
            .create({})
        )
        wizard.user_ids.action_invite_again()
        self._ended(portal, "invited again")

    def test_turning_a_company_into_a_contact_of_another_ends_its_grants(self):
        other = customer_company(self.env, "Other Corp")
        (other_asset,) = sell_licenses(self.env, self.office, other, 1)
        portal = self._holder()
        self.customer.with_user(self.clerk).write({"is_company": False, "parent_id": other.id})
        self._ended(portal, "moved")
        self.assertFalse(other_asset.with_user(portal).key_visible)
        self.assertFalse((self.asset | other_asset).with_user(portal)._esd_owned())

    def test_moving_a_company_above_ends_the_grant_even_when_moved_back(self):
        holding = self.env["res.partner"].create({"name": "Holding", "is_company": True})
        portal = self._holder()
        self.customer.with_user(self.clerk).parent_id = holding
        self.customer.with_user(self.clerk).parent_id = False
        self._ended(portal, "moved")

    def test_a_login_change_an_archive_and_a_merge_end_grants(self):
        portal = self._holder("grant_login")
        portal.sudo().login = "someone_else"
        self._ended(portal, "login")
        portal = self._holder("grant_archive")
        portal.sudo().active = False
        grant = (
            self.env["esd.grant"]
            .with_context(active_test=False)
            .search([("user_id", "=", portal.id)])
        )
        self.assertFalse(grant.active)
        portal = self._holder("grant_merge")
        twin = self.env["res.partner"].create(
            {"name": "Twin", "email": "grant_merge@x.example", "parent_id": self.customer.id}
        )
        merge = self.env["base.partner.merge.automatic.wizard"].create({})
        merge._merge((portal.partner_id | twin).ids, portal.partner_id)
        self._ended(portal, "merged")

    def test_a_grant_moved_in_sql_is_checked_when_read(self):
        """A merge rewrites res_users.partner_id in SQL: the grant is read against what the login
        is now, not trusted."""
        portal = self._holder("grant_sql")
        elsewhere = customer_company(self.env, "Elsewhere Inc")
        self.env.cr.execute(
            "UPDATE res_users SET partner_id = %s WHERE id = %s",
            [elsewhere.id, portal.id],
        )
        self.env.invalidate_all()
        self.assertFalse(self.asset.with_user(portal)._esd_owned())

    # ------------------------------------------------------------------ who gives them
    def test_nobody_writes_a_grant_or_a_buyer_by_hand(self):
        portal = self._holder("grant_rpc")
        grant = self.env["esd.grant"].search([("user_id", "=", portal.id)])
        with self.assertRaises(AccessError):
            grant.with_user(self.manager).write({"partner_id": self.customer.id})
        with self.assertRaises(AccessError):
            self.env["esd.grant"].with_user(self.manager).create(
                {
                    "user_id": portal.id,
                    "partner_id": self.customer.id,
                    "company_id": self.env.company.id,
                    "scope": "keys",
                }
            )
        with self.assertRaises(AccessError):
            grant.with_user(self.manager).unlink()
        with self.assertRaises(AccessError):
            portal.partner_id.with_user(self.clerk).action_esd_allow_keys()

    def test_another_companys_manager_cannot_give_keys_of_this_company(self):
        other_company = self.env["res.company"].create({"name": "ESD Company B"})
        manager_b = new_test_user(
            self.env,
            "grant_mgr_b",
            groups="microsoft_esd.group_esd_manager",
            company_id=other_company.id,
            company_ids=[Command.set(other_company.ids)],
        )
        portal = new_test_user(self.env, "grant_a_login", groups="base.group_portal")
        portal.partner_id.write({"parent_id": self.customer.id, "company_id": False})
        with self.assertRaisesRegex(UserError, "belongs to"):
            portal.partner_id.with_user(manager_b).with_company(
                other_company
            ).action_esd_allow_keys()
        self.assertFalse(self.asset.with_user(portal).key_visible)
        # Even a grant of company B shows nothing of company A's licenses.
        portal.sudo().company_ids = [Command.link(other_company.id)]
        portal.partner_id.with_user(manager_b).with_company(other_company).action_esd_allow_keys()
        self.assertFalse(self.asset.with_user(portal).key_visible)

    # ------------------------------------------------------------------ the buyer
    def test_a_backend_order_with_a_website_makes_no_buyer_and_is_checked(self):
        salesman = new_test_user(self.env, "grant_sales", groups="sales_team.group_sale_salesman")
        portal = new_test_user(self.env, "grant_buyer", groups="base.group_portal")
        portal.partner_id.parent_id = self.customer
        website = self.env["website"].search([], limit=1)
        values = {
            "partner_id": portal.partner_id.id,
            "website_id": website.id,
            "order_line": [
                Command.create(
                    {"product_id": self.office.product_variant_id.id, "product_uom_qty": 1}
                )
            ],
        }
        with self.assertRaises(AccessError):
            self.env["sale.order"].with_user(salesman).create(
                dict(values, esd_buyer_user_id=portal.id)
            )
        order = self.env["sale.order"].with_user(salesman).create(values)
        order.action_confirm()
        self.env["esd.asset"]._esd_provision_pending()
        self.assertTrue(order.esd_asset_ids.sync_status == "synchronized")
        self.assertFalse(order.esd_asset_ids.with_user(portal).key_visible)
        # The backend checks hold for it: a discontinued product is refused.
        self.office.sudo().esd_catalog_status = "discontinued"
        order2 = self.env["sale.order"].with_user(salesman).create(values)
        with self.assertRaisesRegex(UserError, "discontinued"):
            order2.action_confirm()

    # ------------------------------------------------------------------ the upgrade
    def test_the_upgrade_makes_grants_of_flags_and_grants_queued_emails(self):
        """18.0.1.6.0 kept res_users.esd_key_holder and queued emails with fixed placeholders
        to partners: the upgrade gives grants for the company each contact is under then."""
        portal = new_test_user(self.env, "grant_flag", groups="base.group_portal")
        portal.partner_id.parent_id = self.customer
        (asset,) = sell_licenses(self.env, self.office, self.customer, 1)
        (mail,) = self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
        grant = mail._esd_grant()
        # As 18.0.1.6.0 left them: a flag, an email to the partner with the fixed placeholder.
        self.env.cr.execute("ALTER TABLE res_users ADD COLUMN esd_key_holder boolean")
        self.env.cr.execute("UPDATE res_users SET esd_key_holder = true WHERE id = %s", [portal.id])
        old_body = mail.body_html.replace(grant.key_marker, "ESD-LICENSE-KEY-PLACEHOLDER")
        self.env.cr.execute(
            "UPDATE mail_mail SET body_html = %s, email_to = NULL WHERE id = %s",
            [old_body, mail.id],
        )
        self.env.cr.execute("DELETE FROM esd_mail_grant WHERE mail_id = %s", [mail.id])
        self.env.invalidate_all()
        self.assertFalse(self.asset.with_user(portal)._esd_owned())
        self.assertFalse(secrets_of(asset)[0] in outgoing_body(mail))
        path = get_module_path("microsoft_esd") + "/migrations/18.0.1.7.0/post-grants-and-emails.py"
        spec = importlib.util.spec_from_file_location("esd_migration_1_7", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(self.env.cr, "18.0.1.6.0")
        self.env.invalidate_all()
        self.assertTrue(self.asset.with_user(portal).key_visible)
        self.assertEqual(mail.email_to, asset.mail_to)
        self.assertNotIn("ESD-LICENSE-KEY-PLACEHOLDER", mail.body_html)
        self.assertTrue(secrets_of(asset)[0] in outgoing_body(mail))
