"""Who sees a license key and who may act on a license: the whole matrix, over HTTP and JSON-RPC.

Every cell logs in as its role (or not at all, with the share link), does one operation through
the web server exactly as a browser or an RPC client would, and asserts its outcome. A refused
cell also asserts that nothing changed and that CIS (the simulator) received no call. The table
in docs/security.md is rendered from EXPECTED, so the documentation cannot drift from the test.
"""

from dataclasses import dataclass
from pathlib import Path

import requests

from odoo import Command, fields, http
from odoo.modules.module import get_module_path
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException

from .api_common import OPENAPI, make_api_key
from .common import (
    allow_keys,
    connected_instance,
    office_for_sale,
    secrets_of,
    sell_licenses,
    start_simulator,
)

VISIO = "D86-05998:en-US"

ROLES = {
    "customer": "Portal customer",
    "other": "Other portal customer",
    "portal_added": "Portal login added under the customer",
    "reseller": "Portal reseller",
    "end_customer": "Reseller's end customer",
    "sales_own": "Salesperson (own documents)",
    "sales_all": "Salesperson (all documents)",
    "employee_joined": "Employee who made itself the customer's contact",
    "esd_other_company": "ESD user, other company",
    "esd_manager_other_company": "ESD manager, other company",
    "esd_user": "ESD user",
    "esd_manager": "ESD manager",
    "admin": "Administrator",
    "visitor": "Visitor with the share link",
}

# Outcomes: full = the key in clear; masked = the page or value without the key; listed / absent
# (from /my/esd); ok = done; denied = AccessError; refused = a UserError saying why (nothing
# done); 404 = not found; login = asked to log in.
BACKEND = {"esd_user": "ok", "esd_manager": "ok", "admin": "ok"}
PORTAL_OWNERS = {"customer": "ok", "reseller": "ok", "end_customer": "ok"}
MANAGERS = {"esd_manager": "ok", "admin": "ok"}
BACKEND_NO_KEY = {"esd_user": "no key", "esd_manager": "no key", "admin": "no key"}
# Portal users an ESD manager made API users (the reseller API).
API_USERS = {"customer": "ok", "reseller": "ok", "other": "ok"}


def _row(default, visitor="login", **cells):
    row = dict.fromkeys(ROLES, default)
    row["visitor"] = visitor
    row.update(cells)
    return row


# Users who edit contacts (Contact Creation, which Odoo gives every new internal user; the
# matrix's other test users have only the groups they are named after).
PARTNER_EDITORS = {"employee_joined": "ok", "admin": "ok"}
STAFF_READERS = {
    "sales_all": "ok",
    "employee_joined": "ok",
    "esd_user": "ok",
    "esd_manager": "ok",
    "admin": "ok",
}
EXPECTED = {
    "List /my/esd": _row(
        "absent",
        customer="listed",
        reseller="listed",
        end_customer="listed",
        portal_added="listed",
        employee_joined="listed",
    ),
    "License page /my/esd/<id>": _row(
        "masked",
        visitor="masked",
        customer="full",
        reseller="full",
        end_customer="full",
        other="404",
        sales_own="404",
        esd_other_company="404",
        esd_manager_other_company="404",
    ),
    "Read key and link (RPC)": _row(
        "masked",
        customer="full",
        reseller="full",
        end_customer="full",
        other="denied",
        sales_own="denied",
        esd_other_company="denied",
        esd_manager_other_company="denied",
    ),
    "Read internal fields (RPC)": _row("denied", **STAFF_READERS),
    "Read the price paid (RPC)": _row("denied", **STAFF_READERS),
    "Price on the license page": _row(
        "hidden",
        visitor="hidden",
        customer="shown",
        reseller="shown",
        portal_added="shown",
        employee_joined="shown",
        other="404",
        sales_own="404",
        esd_other_company="404",
        esd_manager_other_company="404",
    ),
    "Read back a resent email's key": _row("denied", **BACKEND_NO_KEY),
    "Forge a reconciliation finding": _row("denied"),
    "Change what a product orders": _row("denied", admin="ok"),
    "Put code in the license email": _row("denied", admin="ok"),
    "Banner text from a link": _row("not shown", visitor="not shown"),
    "Read sealed key columns (RPC)": _row("denied"),
    "Write business fields (RPC)": _row("denied"),
    "Reveal key": _row("denied", esd_user="full", esd_manager="full", admin="full"),
    "Update status (backend)": _row("denied", **BACKEND),
    "Resend activation (backend)": _row("denied", **BACKEND),
    "Cancel and return (backend)": _row("denied", **BACKEND),
    "Approve cancellation": _row("denied", **BACKEND),
    "Reject cancellation": _row("denied", **BACKEND),
    "Retry provisioning": _row("denied", **BACKEND),
    "Credit failed license": _row("denied", **BACKEND),
    "Portal update status": _row("404", **PORTAL_OWNERS),
    "Portal resend activation": _row("404", **PORTAL_OWNERS),
    "Portal cancellation request": _row("404", **PORTAL_OWNERS),
    "Portal withdraw request": _row("404", **PORTAL_OWNERS),
    "Private method over RPC": _row("denied"),
    "Read certificate and password": _row("denied", admin="ok"),
    "Change the service URL": _row("denied", admin="ok"),
    "Test connection": _row("denied", **MANAGERS),
    "Get Services Definition": _row("denied", **MANAGERS),
    "Partner sync": _row("denied", **BACKEND),
    "Reconciliation": _row("denied", **BACKEND),
    "Import licenses from CIS": _row("denied", **MANAGERS),
    "Edit the license email": _row("denied", **MANAGERS),
    "Edit the shared license email": _row("denied", admin="ok"),
    "Resend to a new address": _row("denied", **BACKEND),
    "Archive a delivered license": _row(
        "denied", esd_user="refused", esd_manager="refused", admin="refused"
    ),
    "Delete a delivered license": _row("denied", esd_manager="refused", admin="refused"),
    "Link an email to a license (RPC)": _row("denied"),
    "Allow license keys on a contact": _row(
        "denied", esd_manager_other_company="refused", **MANAGERS
    ),
    "Write a grant (RPC)": _row("denied"),
    "Re-encrypt license keys": _row("denied", admin="ok"),
    "API: read a license and its key": _row(
        "403", visitor="401", customer="full", reseller="full", other="404"
    ),
    "API: list licenses": _row(
        "403", visitor="401", customer="listed", reseller="listed", other="absent"
    ),
    "API: order licenses": _row("403", visitor="401", **API_USERS),
    "API: return a license": _row("403", visitor="401", customer="ok", reseller="ok", other="404"),
    "API: register a webhook": _row("403", visitor="401", **API_USERS),
    "Portal API page": _row("404", visitor="login", **API_USERS),
    "Allow reseller API": _row("denied", esd_manager_other_company="refused", **MANAGERS),
    "Make an API key for a reseller": _row(
        "denied", esd_manager_other_company="refused", **MANAGERS
    ),
    "Replay a webhook message (backend)": _row("denied", **BACKEND),
    "Enable a webhook endpoint (backend)": _row("denied", **MANAGERS),
    "Change the sales price rule": _row("denied", **MANAGERS),
    "Price products from the rule": _row("denied", **MANAGERS),
    "Allow selling below cost": _row("denied", **MANAGERS),
    "Read a license's cost and margin (RPC)": _row("denied", **STAFF_READERS),
    "Read price changes (RPC)": _row("denied", **BACKEND),
    "Read price-change emails (RPC)": _row("denied", **BACKEND),
    "Edit the price-change email": _row("denied", **MANAGERS),
    "Edit the shared price-change email": _row("denied", admin="ok"),
    "Put code in the price-change email": _row("denied", admin="ok"),
    "Opt a reseller out of price emails": _row("denied", **PARTNER_EDITORS),
}


def render_matrix():
    """The matrix as the Markdown table of docs/security.md."""
    roles = list(ROLES.values())
    lines = [
        "| operation | " + " | ".join(roles) + " |",
        "|---" * (len(roles) + 1) + "|",
    ]
    for operation, row in EXPECTED.items():
        lines.append(f"| {operation} | " + " | ".join(row[role] for role in ROLES) + " |")
    return "\n".join(lines)


@tagged("post_install", "-at_install")
class TestAccessMatrix(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sim = start_simulator(cls)
        cls.instance = connected_instance(cls.env, cls.simulator.config_path)
        cls.office = office_for_sale(cls.env, 100)
        us = cls.env.ref("base.us")

        def company(name, role="user"):
            return cls.env["res.partner"].create(
                {
                    "name": name,
                    "is_company": True,
                    "email": f"it@{name.split()[0].lower()}.example",
                    "country_id": us.id,
                    "esd_role": role,
                }
            )

        cls.contoso = company("Contoso Ltd")
        cls.other = company("Other Customer")
        cls.fabrikam = company("Fabrikam Reseller", "reseller")
        cls.northwind = company("Northwind Traders")
        branch = cls.env["res.company"].create({"name": "ESD Branch Elsewhere"})

        def portal(login, parent):
            user = new_test_user(cls.env, login, groups="base.group_portal", name=login.title())
            user.partner_id.parent_id = parent
            return user

        joined = new_test_user(
            cls.env,
            "employee_joined",
            groups="sales_team.group_sale_salesman_all_leads,base.group_partner_manager",
        )
        cls.users = {
            "customer": portal("customer", cls.contoso),
            "other": portal("other", cls.other),
            "portal_added": portal("portal_added", cls.contoso),
            "employee_joined": joined,
            "reseller": portal("reseller", cls.fabrikam),
            "end_customer": portal("end_customer", cls.northwind),
            "sales_own": new_test_user(
                cls.env, "sales_own", groups="sales_team.group_sale_salesman"
            ),
            "sales_all": new_test_user(
                cls.env, "sales_all", groups="sales_team.group_sale_salesman_all_leads"
            ),
            "esd_other_company": new_test_user(
                cls.env,
                "esd_other_company",
                groups="microsoft_esd.group_esd_user",
                company_id=branch.id,
                company_ids=[Command.set(branch.ids)],
            ),
            "esd_manager_other_company": new_test_user(
                cls.env,
                "esd_manager_other_company",
                groups="microsoft_esd.group_esd_manager",
                company_id=branch.id,
                company_ids=[Command.set(branch.ids)],
            ),
            "esd_user": new_test_user(cls.env, "esd_user", groups="microsoft_esd.group_esd_user"),
            "esd_manager": new_test_user(
                cls.env, "esd_manager", groups="microsoft_esd.group_esd_manager"
            ),
            "admin": cls.env.ref("base.user_admin"),
        }
        # The customers' key holders, as an ESD manager chose them; "portal_added" was given a
        # login under Contoso by someone who edits contacts, and was never chosen.
        allow_keys(cls.env, *(cls.users[r] for r in ("customer", "reseller", "end_customer")))
        # The employee makes its own contact one of Contoso's, with its own rights (attack 1).
        joined.partner_id.with_user(joined).write({"parent_id": cls.contoso.id})
        # A pool of delivered licenses per owner: cells that change a license take a fresh one.
        changing = sum(op.kind == "fresh" for op in OPERATIONS.values())
        cls.pool = {
            "customer": list(
                sell_licenses(cls.env, cls.office, cls.contoso, (len(ROLES) - 2) * changing + 1)
            ),
            "reseller": list(
                sell_licenses(cls.env, cls.office, cls.fabrikam, 2 * changing + 1, cls.northwind)
            ),
        }
        # Failed licenses, invoiced before delivery (as sale.automatic_invoice does at payment).
        failing = len(ROLES) * sum(op.kind == "failed" for op in OPERATIONS.values())
        cls.sim.faults(fail=failing, fail_status=422, paths="orders")
        cls.failed = list(sell_licenses(cls.env, cls.office, cls.contoso, failing))
        cls.sim.clear_faults()
        assert {a.sync_status for a in cls.failed} == {"failed"}
        orders = cls.env["sale.order"].union(*(a.sale_order_id for a in cls.failed))
        orders._force_lines_to_invoice_policy_order()
        orders._create_invoices(final=True).action_post()
        cls.template = cls.env.ref("microsoft_esd.mail_template_esd_welcome")
        # The reseller API: its API users, everyone's API key, a webhook endpoint and message.
        admin = cls.env.ref("base.user_admin")
        for role in API_USERS:
            cls.users[role].partner_id.with_user(admin).action_esd_allow_api()
        cls.api_keys = {role: make_api_key(user) for role, user in cls.users.items()}
        cls.env["ir.config_parameter"].set_param("microsoft_esd.webhook_allow_loopback", "1")
        cls.endpoint = (
            cls.env["esd.webhook.endpoint"]
            .sudo()
            .create(
                {
                    "url": "http://127.0.0.1:9/hooks",
                    "events": "order.invoiced",
                    "partner_id": cls.fabrikam.id,
                    "company_id": cls.env.company.id,
                    "state": "disabled",
                }
            )
        )
        cls.delivery = (
            cls.env["esd.webhook.delivery"]
            .sudo()
            .create(
                {
                    "endpoint_id": cls.endpoint.id,
                    "event_type": "order.invoiced",
                    "message_id": "msg_matrix",
                    "payload": "{}",
                    "state": "failed",
                }
            )
        )
        cls.digest_template = cls.env.ref("microsoft_esd.mail_template_esd_price_digest")
        # A price change and its digest, as a sync and the digest job record them.
        cls.visio = cls.env["product.template"].search([("esd_product_id", "=", VISIO)])
        cls.instance.write({"esd_price_from_cost": True, "esd_price_markup": 25.0})
        cls.visio.list_price = 500.0  # typed by hand: Fixed Sales Price
        tier = cls.env["product.pricelist"].create({"name": "Matrix tier", "sequence": 50})
        cls.price_change = cls.env["esd.price.change"].create(
            {
                "product_tmpl_id": cls.visio.id,
                "instance_id": cls.instance.id,
                "date": fields.Datetime.now(),
                "cis_price_old": 339.99,
                "cis_price_new": 349.99,
                "cis_currency": "USD",
                "cis_currency_old": "USD",
                "cost_old": 339.99,
                "cost_new": 349.99,
                "announced": True,
                "line_ids": [
                    Command.create(
                        {"pricelist_id": tier.id, "price_old": 370.0, "price_new": 380.0}
                    )
                ],
            }
        )
        cls.digest = cls.env["esd.price.digest"].create(
            {
                "partner_id": cls.fabrikam.id,
                "instance_id": cls.instance.id,
                "pricelist_id": tier.id,
                "date": fields.Datetime.now(),
                "line_ids": [Command.set(cls.price_change.line_ids.ids)],
                "state": "sent",
            }
        )

    # ------------------------------------------------------------------ helpers
    def _license(self, role, kind):
        """The license a cell works on: fresh when the operation changes it."""
        if kind == "failed":
            return self.failed.pop()
        pool = self.pool["reseller" if role in ("reseller", "end_customer") else "customer"]
        return pool.pop() if kind == "fresh" else pool[0]

    def _login(self, role):
        if role == "visitor":
            self.authenticate(None, None)
        else:
            login = self.users[role].login
            self.authenticate(login, login)

    def rpc(self, model, method, args, kwargs=None):
        params = {"model": model, "method": method, "args": args, "kwargs": kwargs or {}}
        try:
            return "ok", self.make_jsonrpc_request("/web/dataset/call_kw", params)
        except JsonRpcException as exc:
            name = str(exc)
            if "SessionExpired" in name:
                return "login", None
            if "AccessError" in name or "MissingError" in name:
                return "denied", None
            if "UserError" in name:
                return "refused", None
            return f"error {name}", None

    def post(self, url, **data):
        response = self.url_open(
            url, data={"csrf_token": http.Request.csrf_token(self), **data}, allow_redirects=False
        )
        if response.status_code == 404:
            return "404"
        location = response.headers.get("Location", "")
        if "/web/login" in location:
            return "login"
        if "outcome=" in location and "outcome=error" not in location:
            return "ok"
        return f"refused {location or response.status_code}"

    def key_outcome(self, asset, text):
        token, link = secrets_of(asset)
        if token in text and link in text:
            return "full"
        return "masked" if asset.token_tail in text else "neither the key nor its mask"

    def _state(self, asset):
        """What a refused operation must leave as it was."""
        self.env.cr.precommit.run()  # the tracking messages of what happened so far
        self.env.invalidate_all()
        values = [
            (self.instance.sudo().service_url, self.instance.sudo().state),
            self.template.sudo().email_cc,
            (self.instance.sudo().esd_price_markup, self.digest_template.sudo().email_cc),
            (self.visio.sudo().esd_price_fixed, self.fabrikam.sudo().esd_price_digest_optout),
        ]
        if asset:
            asset = asset.sudo()
            values.append(
                (
                    asset.state,
                    asset.token_status,
                    asset.cancel_request_state,
                    asset.sync_status,
                    asset.customer_id,
                    len(asset.message_ids),
                )
            )
        return values

    # ------------------------------------------------------------------ the test
    def test_access_matrix(self):
        self.assertEqual(set(OPERATIONS), set(EXPECTED))
        cells = 0
        for role, label in ROLES.items():
            for name, expected in EXPECTED.items():
                operation = OPERATIONS[name]
                with self.subTest(role=label, operation=name):
                    asset = operation.kind and self._license(role, operation.kind)
                    if operation.prepare:
                        operation.prepare(asset)
                    self._login(role)
                    before, calls = self._state(asset), self.sim.stats()["cis_requests"]
                    outcome = operation.run(self, role, asset)
                    self.assertEqual(outcome, expected[role])
                    contacted = self.sim.stats()["cis_requests"] - calls
                    if outcome in ("denied", "refused", "404", "login", "401", "403"):
                        self.assertEqual(self._state(asset), before, "a refusal changed nothing")
                        self.assertEqual(contacted, 0, "a refused operation contacted CIS")
                    elif operation.cis:
                        self.assertGreater(contacted, 0, "an allowed operation reached CIS")
                    cells += 1
        self.assertEqual(cells, len(ROLES) * len(EXPECTED))

    def test_docs_show_the_same_matrix(self):
        docs = Path(get_module_path("microsoft_esd"), "docs", "security.md").read_text()
        self.assertIn(render_matrix(), docs, "docs/security.md differs from EXPECTED: re-render")


# ---------------------------------------------------------------------- the operations
@dataclass(frozen=True)
class Operation:
    run: object  # (case, role, license) -> outcome
    kind: str = "shared"  # the license it needs: shared, fresh (it changes it), failed, or None
    prepare: object = None  # (license) -> None, before logging in
    cis: bool = False  # allowed, it calls CIS


def _list(case, role, asset):
    response = case.url_open(f"/my/esd?search={asset.name}", allow_redirects=False)
    if "/web/login" in response.headers.get("Location", ""):
        return "login"
    return "listed" if f'href="/my/esd/{asset.id}' in response.text else "absent"


def _open_page(case, role, asset, query=""):
    """The license page as the role sees it (the visitor with the share link)."""
    params = [query] if query else []
    if role == "visitor":
        params.append(f"access_token={asset.sudo()._portal_ensure_token()}")
    return case.url_open(f"/my/esd/{asset.id}" + ("?" + "&".join(params) if params else ""))


def _page(case, role, asset):
    response = _open_page(case, role, asset)
    if response.status_code == 404:
        return "404"
    if role == "visitor":
        case.assertIn("Log in to see your key", response.text)
    return case.key_outcome(asset, response.text)


def _read_key(case, role, asset):
    outcome, rows = case.rpc("esd.asset", "read", [asset.ids, ["token", "activation_link"]])
    if outcome != "ok":
        return outcome
    return case.key_outcome(asset, f"{rows[0]['token']} {rows[0]['activation_link']}")


def _read(*fields):
    def run(case, role, asset):
        return case.rpc("esd.asset", "read", [asset.ids, list(fields)])[0]

    return run


def _write_business(case, role, asset):
    vals = {"token_status": "redeemed", "customer_id": case.other.id}
    return case.rpc("esd.asset", "write", [asset.ids, vals])[0]


def _reveal(case, role, asset):
    outcome, revealed = case.rpc("esd.asset", "esd_reveal_key", [asset.ids])
    if outcome != "ok":
        return outcome
    note = asset.message_ids[0].body
    case.assertIn("License key revealed to", note)
    case.assertFalse(revealed["token"] in note, "the chatter never carries the key")
    return case.key_outcome(asset, f"{revealed['token']} {revealed['activation_link']}")


def _backend(method):
    def run(case, role, asset):
        return case.rpc("esd.asset", method, [asset.ids])[0]

    return run


def _portal(action):
    def run(case, role, asset):
        return case.post(f"/my/esd/{asset.id}/{action}", comment="matrix")

    return run


def _request_cancellation(asset):
    asset._esd_request_cancellation("matrix", asset.customer_id)


def _read_certificate(case, role, asset):
    fields = ["certificate_file", "certificate_password"]
    return case.rpc("esd.instance", "read", [case.instance.ids, fields])[0]


def _change_service_url(case, role, asset):
    url = case.instance.service_url
    outcome = case.rpc(
        "esd.instance", "write", [case.instance.ids, {"service_url": "https://x.example"}]
    )[0]
    if outcome == "ok":
        case.instance.sudo().write({"service_url": url, "state": "connected"})
    return outcome


def _instance(method):
    def run(case, role, asset):
        outcome = case.rpc("esd.instance", method, [case.instance.ids])[0]
        case.instance.sudo().state = "connected"
        return outcome

    return run


def _partner_sync(case, role, asset):
    partner = case.env["res.partner"].create(
        {"name": f"Sync {role}", "is_company": True, "email": f"{role}@sync.example"}
    )
    vals = {
        "partner_id": partner.id,
        "role": "user",
        "email": partner.email,
        "instance_ids": [Command.set(case.instance.ids)],
    }
    outcome, wizard_id = case.rpc("esd.partner.sync.wizard", "create", [vals])
    if outcome == "ok":
        outcome = case.rpc("esd.partner.sync.wizard", "action_save_and_sync", [[wizard_id]])[0]
    return outcome


def _reconcile(case, role, asset):
    vals = {"instance_ids": [Command.set(case.instance.ids)]}
    outcome, wizard_id = case.rpc("esd.reconciliation", "create", [vals])
    if outcome == "ok":
        outcome = case.rpc("esd.reconciliation", "action_run", [[wizard_id]])[0]
    return outcome


def _import_licenses(case, role, asset):
    """Take over the channel's licenses: ESD managers only (every license is known here, so
    an allowed run reads CIS and imports nothing)."""
    vals = {"instance_id": case.instance.id}
    outcome, wizard_id = case.rpc("esd.license.import", "create", [vals])
    if outcome == "ok":
        outcome = case.rpc("esd.license.import", "action_import", [[wizard_id]])[0]
    return outcome


def _edit_template(case, role, asset):
    """The company's own license email, as its ESD managers reach it from an instance."""
    outcome, action = case.rpc(
        "esd.instance", "action_esd_edit_license_template", [case.instance.ids]
    )
    if outcome != "ok":
        return outcome
    template = case.env["mail.template"].browse(action["res_id"])
    outcome = case.rpc("mail.template", "write", [template.ids, {"email_cc": "x@example.com"}])[0]
    if outcome == "ok":
        template.sudo().email_cc = False
    return outcome


def _edit_shared_template(case, role, asset):
    """The shared license email, which companies without their own use."""
    template = case.template
    outcome = case.rpc("mail.template", "write", [template.ids, {"email_cc": "x@example.com"}])[0]
    if outcome == "ok":
        template.sudo().email_cc = False
    return outcome


def _resend_to(case, role, asset):
    vals = {"asset_id": asset.id, "email": "new-address@contoso.example"}
    outcome, wizard_id = case.rpc("esd.resend.to", "create", [vals])
    if outcome == "ok":
        outcome = case.rpc("esd.resend.to", "action_send", [[wizard_id]])[0]
    return outcome


def _link_email(case, role, asset):
    vals = {"esd_asset_id": asset.id, "email_to": "thief@evil.example", "body_html": "x"}
    return case.rpc("mail.mail", "create", [vals])[0]


def _allow_keys(case, role, asset):
    """A new portal login under Contoso, given keys by the role."""
    login = f"keys_{role}"
    user = new_test_user(case.env, login, groups="base.group_portal")
    user.partner_id.parent_id = case.contoso
    return case.rpc("res.partner", "action_esd_allow_keys", [user.partner_id.ids])[0]


def _write_grant(case, role, asset):
    vals = {
        "user_id": case.users["portal_added"].id,
        "partner_id": case.contoso.id,
        "company_id": case.env.company.id,
        "scope": "keys",
    }
    return case.rpc("esd.grant", "create", [vals])[0]


def _reencrypt(case, role, asset):
    outcome, settings_id = case.rpc("res.config.settings", "create", [{}])
    if outcome == "ok":
        outcome = case.rpc("res.config.settings", "action_esd_reencrypt_keys", [[settings_id]])[0]
    return outcome


def _price_page(case, role, asset):
    response = _open_page(case, role, asset)
    if response.status_code == 404:
        return "404"
    return "shown" if ">Price<" in response.text else "hidden"


def _resend_read_back(case, role, asset):
    """Attack 2: resend, then read back the queued email as the one who pressed it."""
    outcome = case.rpc("esd.asset", "action_resend_activation", [asset.ids])[0]
    if outcome != "ok":
        return outcome
    domain = [["subject", "like", f"({asset.name})"]]
    bodies = []
    for model, field in (("mail.message", "body"), ("mail.mail", "body_html")):
        found = case.rpc(model, "search_read", [domain, [field]])
        if found[0] == "ok":
            bodies += [row[field] or "" for row in found[1]]
    token, link = secrets_of(asset)
    return "key!" if any(token in body or link in body for body in bodies) else "no key"


def _forge_finding(case, role, asset):
    """Attack 3: a finding written over RPC ("Microsoft returned it"), then credited."""
    outcome, wizard_id = case.rpc(
        "esd.reconciliation", "create", [{"instance_ids": [Command.set(case.instance.ids)]}]
    )
    if outcome != "ok":
        return outcome
    vals = {
        "reconciliation_id": wizard_id,
        "asset_id": asset.id,
        "kind": "status_differs",
        "reported_status": "return_accepted",
    }
    outcome, line_id = case.rpc("esd.reconciliation.line", "create", [vals])
    if outcome == "ok":
        outcome = case.rpc("esd.reconciliation.line", "action_credit", [[line_id]])[0]
    return outcome


def _product_orders(case, role, asset):
    """Another SKU behind a cheap product: ESD managers only."""
    product = case.office
    outcome = case.rpc("product.template", "write", [product.ids, {"esd_returnable": False}])[0]
    if outcome == "ok":
        product.sudo().esd_returnable = True
    return outcome


def _template_code(case, role, asset):
    """Code in the license email, which would render as the sender (superuser in the cron)."""
    template = case.template
    body = str(template.sudo().body_html)
    code = "<t t-out=\"object.env['esd.instance'].sudo().search([]).certificate_password\"/>"
    outcome = case.rpc("mail.template", "write", [template.ids, {"body_html": body + code}])[0]
    if outcome == "ok":
        template.sudo().body_html = body
    return outcome


def _banner(case, role, asset):
    response = _open_page(case, role, asset, "message=Email+us+your+key&error=Email+us+your+key")
    return "shown" if "Email us your key" in response.text else "not shown"


def api(case, role, method, path, body=None):
    """One reseller API call with the role's API key (none for the visitor): (status, body)."""
    headers = {} if role == "visitor" else {"Authorization": f"Bearer {case.api_keys[role]}"}
    if method == "POST":
        headers["Idempotency-Key"] = f"matrix-{role}-{path}"
    case.env.flush_all()
    response = requests.request(
        method, f"{case.base_url()}/api/esd/v1{path}", json=body, headers=headers, timeout=60
    )
    OPENAPI.check(method, path.split("?")[0], response)
    case.env.invalidate_all()
    return response.status_code, response.json()


def _api_status(status):
    return {401: "401", 403: "403", 404: "404"}.get(status, f"status {status}")


def _api_license(case, role, asset):
    status, body = api(case, role, "GET", f"/licenses/{asset.id}")
    if status != 200:
        return _api_status(status)
    token, link = secrets_of(asset)
    if body["key"] is None:
        return "no key"
    return "full" if body["key"] == token and body["activation_link"] == link else "wrong key"


def _api_list(case, role, asset):
    cursor = ""
    while True:
        status, body = api(case, role, "GET", f"/licenses?limit=200{cursor}")
        if status != 200:
            return _api_status(status)
        if asset.id in [item["id"] for item in body["items"]]:
            return "listed"
        if not body["next_cursor"]:
            return "absent"
        cursor = f"&cursor={body['next_cursor']}"


def _api_order(case, role, asset):
    lines = [{"sku": case.office.esd_sku, "quantity": 1}]
    status, _body = api(case, role, "POST", "/orders", {"lines": lines})
    return "ok" if status == 201 else _api_status(status)


def _api_return(case, role, asset):
    status, _body = api(case, role, "POST", f"/licenses/{asset.id}/return", {"comment": "m"})
    return "ok" if status == 202 else _api_status(status)


def _api_webhook(case, role, asset):
    body = {"url": "http://127.0.0.1:9/matrix", "events": ["license.delivered"]}
    status, _body = api(case, role, "POST", "/webhooks", body)
    return "ok" if status == 201 else _api_status(status)


def _portal_api_page(case, role, asset):
    response = case.url_open("/my/esd/api", allow_redirects=False)
    if "/web/login" in response.headers.get("Location", ""):
        return "login"
    return "ok" if response.status_code == 200 else str(response.status_code)


def _allow_api(case, role, asset):
    partner = case.users["portal_added"].partner_id
    return case.rpc("res.partner", "action_esd_allow_api", [partner.ids])[0]


def _make_api_key(case, role, asset):
    partner = case.users["customer"].partner_id
    outcome, action = case.rpc("res.partner", "action_esd_make_api_key", [partner.ids])
    if outcome == "ok":
        case.assertEqual(len(action["context"]["default_key"]), 40)
    return outcome


def _replay(case, role, asset):
    return case.rpc("esd.webhook.delivery", "action_replay", [case.delivery.ids])[0]


def _enable(case, role, asset):
    outcome = case.rpc("esd.webhook.endpoint", "action_enable", [case.endpoint.ids])[0]
    case.endpoint.sudo().state = "disabled"
    return outcome


def _price_rule(case, role, asset):
    outcome = case.rpc("esd.instance", "write", [case.instance.ids, {"esd_price_markup": 30.0}])[0]
    if outcome == "ok":
        case.instance.sudo().esd_price_markup = 25.0
    return outcome


def _price_from_rule(case, role, asset):
    """A product priced by hand handed back to the instance's rule: ESD managers only."""
    outcome = case.rpc("product.template", "action_esd_price_from_rule", [case.visio.ids])[0]
    if outcome == "ok":
        case.assertEqual(case.visio.sudo().list_price, 424.99, "cost 339.99 + 25 %, .99")
        case.visio.sudo().list_price = 500.0
    return outcome


def _allow_below_cost(case, role, asset):
    """A quotation selling Office below its cost (149.99), no salesperson's own."""
    order = case.env["sale.order"].create(
        {
            "partner_id": case.contoso.id,
            "user_id": False,
            "order_line": [
                Command.create(
                    {"product_id": case.office.product_variant_id.id, "price_unit": 90.0}
                )
            ],
        }
    )
    outcome = case.rpc("sale.order", "action_esd_allow_below_cost", [order.ids])[0]
    allowed = bool(order.sudo().esd_below_cost_allowance)
    case.assertEqual(allowed, outcome == "ok", "allowed exactly when the call was")
    return outcome


def _read_record(record_attr, *fields):
    def run(case, role, asset):
        record = getattr(case, record_attr)
        return case.rpc(record._name, "read", [record.ids, list(fields)])[0]

    return run


def _edit_digest_template(case, role, asset):
    """The price-change email of the instance's company, from the instance's button."""
    outcome, action = case.rpc(
        "esd.instance", "action_esd_edit_price_digest_template", [case.instance.ids]
    )
    if outcome != "ok":
        return outcome
    template = case.env["mail.template"].browse(action["res_id"])
    case.assertEqual(template.esd_company_id, case.instance.company_id)
    outcome = case.rpc("mail.template", "write", [template.ids, {"email_cc": "x@example.com"}])[0]
    if outcome == "ok":
        template.sudo().email_cc = False
    return outcome


def _edit_shared_digest_template(case, role, asset):
    """The shared price-change email (no company): system administrators only."""
    template = case.digest_template
    outcome = case.rpc("mail.template", "write", [template.ids, {"email_cc": "x@example.com"}])[0]
    if outcome == "ok":
        template.sudo().email_cc = False
    return outcome


def _digest_template_code(case, role, asset):
    """Code in the price-change email, rendered by its cron as superuser."""
    template = case.digest_template
    body = str(template.sudo().body_html)
    code = "<t t-out=\"object.env['esd.instance'].sudo().search([]).certificate_password\"/>"
    outcome = case.rpc("mail.template", "write", [template.ids, {"body_html": body + code}])[0]
    if outcome == "ok":
        template.sudo().body_html = body
    return outcome


def _price_optout(case, role, asset):
    partner = case.fabrikam
    vals = {"esd_price_digest_optout": True}
    outcome = case.rpc("res.partner", "write", [partner.ids, vals])[0]
    if outcome == "ok":
        partner.sudo().esd_price_digest_optout = False
    return outcome


OPERATIONS = {
    "List /my/esd": Operation(_list),
    "License page /my/esd/<id>": Operation(_page),
    "Read key and link (RPC)": Operation(_read_key),
    "Read internal fields (RPC)": Operation(
        _read("sync_error", "request_id", "esd_license_id", "access_token")
    ),
    "Read the price paid (RPC)": Operation(_read("price_unit", "invoice_amount")),
    "Price on the license page": Operation(_price_page),
    "Read back a resent email's key": Operation(_resend_read_back, kind="fresh"),
    "Forge a reconciliation finding": Operation(_forge_finding, kind="fresh"),
    "Change what a product orders": Operation(_product_orders, kind=None),
    "Put code in the license email": Operation(_template_code, kind=None),
    "Banner text from a link": Operation(_banner),
    "Read sealed key columns (RPC)": Operation(
        _read("token_sealed", "activation_link_sealed", "token_hash")
    ),
    "Write business fields (RPC)": Operation(_write_business),
    "Reveal key": Operation(_reveal, kind="fresh"),
    "Update status (backend)": Operation(
        _backend("action_update_license_status"), kind="fresh", cis=True
    ),
    "Resend activation (backend)": Operation(_backend("action_resend_activation"), kind="fresh"),
    # Both record the return; the returns cron they trigger calls CIS.
    "Cancel and return (backend)": Operation(_backend("action_cancel_license"), kind="fresh"),
    "Approve cancellation": Operation(
        _backend("action_approve_cancellation"), kind="fresh", prepare=_request_cancellation
    ),
    "Reject cancellation": Operation(
        _backend("action_reject_cancellation"), kind="fresh", prepare=_request_cancellation
    ),
    "Retry provisioning": Operation(_backend("action_retry_provisioning"), kind="failed"),
    "Credit failed license": Operation(_backend("action_credit_failed_license"), kind="failed"),
    "Portal update status": Operation(_portal("update"), kind="fresh", cis=True),
    "Portal resend activation": Operation(_portal("resend"), kind="fresh"),
    "Portal cancellation request": Operation(_portal("cancel"), kind="fresh"),
    "Portal withdraw request": Operation(
        _portal("withdraw"), kind="fresh", prepare=_request_cancellation
    ),
    "Private method over RPC": Operation(_backend("_esd_portal_resend"), kind="fresh"),
    "Read certificate and password": Operation(_read_certificate, kind=None),
    "Change the service URL": Operation(_change_service_url, kind=None),
    "Test connection": Operation(_instance("action_test_connection"), kind=None, cis=True),
    "Get Services Definition": Operation(
        _instance("action_get_services_definition"), kind=None, cis=True
    ),
    "Partner sync": Operation(_partner_sync, kind=None, cis=True),
    "Reconciliation": Operation(_reconcile, kind=None, cis=True),
    "Import licenses from CIS": Operation(_import_licenses, kind=None, cis=True),
    "Edit the license email": Operation(_edit_template, kind=None),
    "Edit the shared license email": Operation(_edit_shared_template, kind=None),
    "Resend to a new address": Operation(_resend_to, kind="fresh"),
    "Archive a delivered license": Operation(_backend("action_archive"), kind="fresh"),
    "Delete a delivered license": Operation(_backend("unlink"), kind="fresh"),
    "Link an email to a license (RPC)": Operation(_link_email),
    "Allow license keys on a contact": Operation(_allow_keys, kind=None),
    "Write a grant (RPC)": Operation(_write_grant, kind=None),
    "Re-encrypt license keys": Operation(_reencrypt, kind=None),
    "API: read a license and its key": Operation(_api_license),
    "API: list licenses": Operation(_api_list),
    "API: order licenses": Operation(_api_order, kind=None),
    "API: return a license": Operation(_api_return, kind="fresh"),
    "API: register a webhook": Operation(_api_webhook, kind=None),
    "Portal API page": Operation(_portal_api_page, kind=None),
    "Allow reseller API": Operation(_allow_api, kind=None),
    "Make an API key for a reseller": Operation(_make_api_key, kind=None),
    "Replay a webhook message (backend)": Operation(_replay, kind=None),
    "Enable a webhook endpoint (backend)": Operation(_enable, kind=None),
    "Change the sales price rule": Operation(_price_rule, kind=None),
    "Price products from the rule": Operation(_price_from_rule, kind=None),
    "Allow selling below cost": Operation(_allow_below_cost, kind=None),
    "Read a license's cost and margin (RPC)": Operation(_read("cost_unit", "margin")),
    "Read price changes (RPC)": Operation(
        _read_record("price_change", "cost_old", "cost_new"), kind=None
    ),
    "Read price-change emails (RPC)": Operation(
        _read_record("digest", "partner_id", "esd_price_table_html"), kind=None
    ),
    "Edit the price-change email": Operation(_edit_digest_template, kind=None),
    "Edit the shared price-change email": Operation(_edit_shared_digest_template, kind=None),
    "Put code in the price-change email": Operation(_digest_template_code, kind=None),
    "Opt a reseller out of price emails": Operation(_price_optout, kind=None),
}
