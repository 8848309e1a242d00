from odoo import http
from odoo.exceptions import AccessError
from odoo.tests import HttpCase, new_test_user, tagged

from .common import (
    allow_keys,
    connected_instance,
    office_for_sale,
    secrets_of,
    sell_licenses,
    start_simulator,
)


@tagged("post_install", "-at_install")
class TestPortal(HttpCase):
    """What customers and resellers see and do in the portal, and only that."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = start_simulator(cls)
        cls.instance = connected_instance(cls.env, cls.simulator.config_path)
        cls.office = office_for_sale(cls.env, 100)
        us = cls.env.ref("base.us")

        def company(name, email, role="user"):
            return cls.env["res.partner"].create(
                {
                    "name": name,
                    "is_company": True,
                    "email": email,
                    "country_id": us.id,
                    "esd_role": role,
                }
            )

        cls.contoso = company("Contoso Ltd", "it@contoso.example")
        cls.other = company("Other Customer", "it@other.example")
        cls.reseller = company("Fabrikam Reseller", "sales@fabrikam.example", "reseller")
        cls.northwind = company("Northwind Traders", "it@northwind.example")
        cls.litware = company("Litware Inc", "it@litware.example")
        cls.contoso_user = new_test_user(
            cls.env, "contoso", groups="base.group_portal", name="Jane Contoso"
        )
        cls.contoso_user.partner_id.parent_id = cls.contoso
        cls.reseller_user = new_test_user(
            cls.env, "fabrikam", groups="base.group_portal", name="Rob Fabrikam"
        )
        cls.reseller_user.partner_id.parent_id = cls.reseller
        allow_keys(cls.env, cls.contoso_user, cls.reseller_user)
        cls.mine = cls._licenses(cls.contoso, 2)
        cls.theirs = cls._licenses(cls.other, 1)
        cls.for_northwind = cls._licenses(cls.reseller, 1, cls.northwind)
        cls.for_litware = cls._licenses(cls.reseller, 1, cls.litware)

    @classmethod
    def _licenses(cls, partner, count, end_customer=None):
        return sell_licenses(cls.env, cls.office, partner, count, end_customer)

    def _post(self, url, **data):
        return self.url_open(url, data={"csrf_token": http.Request.csrf_token(self), **data})

    def test_home_entry_and_list_show_own_licenses_only(self):
        self.authenticate("contoso", "contoso")
        home = self.url_open("/my/home")
        self.assertIn("Microsoft ESD licenses", home.text)
        page = self.url_open("/my/esd")
        self.assertEqual(page.status_code, 200)
        for asset in self.mine:
            self.assertIn(asset.name, page.text)
        for asset in self.theirs | self.for_northwind:
            self.assertNotIn(asset.name, page.text)
        counters = self.make_jsonrpc_request("/my/counters", {"counters": ["esd_asset_count"]})
        self.assertEqual(counters["esd_asset_count"], 2)

    def test_filters_and_search(self):
        self.mine[0].sudo().write({"state": "cancelled"})
        self.authenticate("contoso", "contoso")
        cancelled = self.url_open("/my/esd?filterby=cancelled").text
        self.assertIn(self.mine[0].name, cancelled)
        self.assertNotIn(self.mine[1].name, cancelled)
        found = self.url_open(f"/my/esd?search={self.mine[1].name}").text
        self.assertIn(self.mine[1].name, found)
        self.assertNotIn(self.mine[0].name, found)

    def test_detail_page_and_another_customers_license(self):
        self.authenticate("contoso", "contoso")
        asset = self.mine[0]
        page = self.url_open(f"/my/esd/{asset.id}")
        self.assertEqual(page.status_code, 200)
        token, link = secrets_of(asset)
        self.assertTrue(token in page.text, "the customer sees its key")
        self.assertTrue(link in page.text, "and its activation link")
        self.assertEqual(self.url_open(f"/my/esd/{self.theirs.id}").status_code, 404)
        self.assertEqual(self.url_open("/my/esd/999999").status_code, 404)

    def test_a_license_page_leads_to_the_previous_and_next_of_the_list_seen(self):
        self.authenticate("contoso", "contoso")
        self.url_open("/my/esd?sortby=name")  # the list the customer saw, in its order
        first, second = self.mine.sorted("name")[:2]
        page = self.url_open(f"/my/esd/{first.id}").text
        self.assertIn("record_pager", page)
        self.assertIn(f"/my/esd/{second.id}", page)

    def test_outcome_banners_are_the_pages_own_words(self):
        self.authenticate("contoso", "contoso")
        asset = self.mine[0]
        page = self.url_open(f"/my/esd/{asset.id}?outcome=withdrawn").text
        self.assertIn("Your cancellation request was withdrawn.", page)
        page = self.url_open(f"/my/esd/{asset.id}?outcome=Call%20us%20now").text
        self.assertNotIn("o_esd_message", page)
        self.assertNotIn("Call us now", page)

    def test_the_once_a_minute_limit_holds_when_cis_fails(self):
        """A CIS error undoes the update, not its stamp: clicking again does not reach CIS."""
        self.authenticate("contoso", "contoso")
        asset = self.mine[0]
        self.admin.faults(fail=5, fail_status=422, paths="licenses")
        self.addCleanup(self.admin.clear_faults)
        calls = self.admin.stats()["cis_requests"]
        first = self._post(f"/my/esd/{asset.id}/update")
        self.assertIn("o_esd_error", first.text)
        after_first = self.admin.stats()["cis_requests"]
        self.assertGreater(after_first, calls)
        second = self._post(f"/my/esd/{asset.id}/update")
        self.assertIn("less than a minute ago", second.text)
        self.assertEqual(self.admin.stats()["cis_requests"], after_first, "CIS asked again")
        # The refusal's text travels in the session, not the link: the link alone shows nothing.
        plain = self.url_open(f"/my/esd/{asset.id}?outcome=error")
        self.assertNotIn("o_esd_error", plain.text)

    def test_access_token_link_without_login(self):
        asset = self.mine[1]
        token = asset.sudo()._portal_ensure_token()
        self.assertEqual(self.url_open(f"/my/esd/{asset.id}?access_token=wrong").status_code, 404)
        page = self.url_open(f"/my/esd/{asset.id}?access_token={token}")
        self.assertEqual(page.status_code, 200)
        self.assertIn(asset.name, page.text)

    def test_actions_post_with_csrf(self):
        self.authenticate("contoso", "contoso")
        asset = self.mine[0]
        before = self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
        response = self._post(f"/my/esd/{asset.id}/resend")
        self.assertIn("on its way", response.text)
        # A new license email, which replaces one not sent yet (the customer gets one).
        after = self.env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
        self.assertEqual(len(after), 1)
        self.assertNotIn(after, before)

        self.admin.redeem(self.mine[1].esd_license_id)
        response = self._post(f"/my/esd/{self.mine[1].id}/update")
        self.assertIn("status was updated", response.text)
        self.assertEqual(self.mine[1].token_status, "redeemed")

        response = self._post(f"/my/esd/{asset.id}/cancel", comment="Bought one too many")
        self.assertIn("cancellation request was sent", response.text)
        self.assertEqual(asset.cancel_request_state, "pending")
        self.assertEqual(asset.cancel_request_comment, "Bought one too many")
        self.assertIn("Withdraw the request", response.text)
        response = self._post(f"/my/esd/{asset.id}/withdraw")
        self.assertEqual(asset.cancel_request_state, "none")

        refused = self._post(f"/my/esd/{self.mine[1].id}/cancel")  # redeemed: refused, said why
        self.assertIn("already redeemed", refused.text)
        self.assertEqual(self.mine[1].cancel_request_state, "none")

    def test_actions_on_another_customers_license_are_refused(self):
        self.authenticate("contoso", "contoso")
        for action in ("resend", "update", "cancel", "withdraw"):
            self.assertEqual(self._post(f"/my/esd/{self.theirs.id}/{action}").status_code, 404)
        self.assertEqual(self.theirs.cancel_request_state, "none")

    def test_posts_without_csrf_are_rejected(self):
        self.authenticate("contoso", "contoso")
        response = self.url_open(f"/my/esd/{self.mine[0].id}/cancel", data={"comment": "x"})
        self.assertEqual(response.status_code, 400)
        self.assertEqual(self.mine[0].cancel_request_state, "none")

    def test_reseller_sees_its_customers_grouped_and_can_pick_one(self):
        self.authenticate("fabrikam", "fabrikam")
        page = self.url_open("/my/esd").text
        self.assertIn("Northwind Traders", page)
        self.assertIn("Litware Inc", page)
        self.assertIn("All my customers", page)
        self.assertIn(self.for_northwind.name, page)
        self.assertIn(self.for_litware.name, page)
        self.assertNotIn(self.mine[0].name, page)
        picked = self.url_open(f"/my/esd?customer={self.northwind.id}").text
        self.assertIn(self.for_northwind.name, picked)
        self.assertNotIn(self.for_litware.name, picked)
        detail = self.url_open(f"/my/esd/{self.for_litware.id}")
        self.assertEqual(detail.status_code, 200)

    def test_record_rules_hold_through_rpc_too(self):
        Asset = self.env["esd.asset"]
        self.assertEqual(Asset.with_user(self.contoso_user).search([]), self.mine)
        self.assertEqual(
            Asset.with_user(self.reseller_user).search([]), self.for_northwind | self.for_litware
        )
        masked = self.theirs.with_user(
            new_test_user(self.env, "sales2", groups="sales_team.group_sale_salesman_all_leads")
        ).token
        self.assertTrue(masked.startswith("*****-"))
        own_documents = new_test_user(self.env, "sales3", groups="sales_team.group_sale_salesman")
        with self.assertRaises(AccessError):
            self.theirs.with_user(own_documents).token  # noqa: B018 - reading is the test

    def test_portal_tour_opens_a_license_and_resends_its_link(self):
        license_mails = [("esd_asset_id", "in", self.mine.ids)]
        last = max(self.env["mail.mail"].search(license_mails).ids or [0])
        self.start_tour("/my/esd", "esd_portal_tour", login="contoso")
        self.assertTrue(self.env["mail.mail"].search([*license_mails, ("id", ">", last)]))

    def test_a_login_without_a_grant_is_told_whom_to_ask(self):
        """Issue 29: the page said "Only the users of Contoso see this key" to Contoso's own
        user; it says who decides and how to reach them."""
        colleague = new_test_user(self.env, "colleague", groups="base.group_portal")
        colleague.partner_id.parent_id = self.contoso
        self.env.company.email = "licenses@seller.example"
        self.authenticate("colleague", "colleague")
        page = self.url_open(f"/my/esd/{self.mine[0].id}").text
        self.assertIn("Your login does not see this key", page)
        self.assertIn("decides which logins of", page)
        self.assertIn("mailto:licenses@seller.example", page)
        self.assertNotIn("Only the users of", page)
