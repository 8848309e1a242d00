"""The reseller API over HTTP, with real API keys: every endpoint and error, each answer checked
against docs/reseller-api.openapi.json (tests/api_common.py)."""

import json
import socket
import uuid

import requests
import standardwebhooks

from odoo.tests import new_test_user, tagged

from .api_common import PREFIX, ApiCase, Receiver, make_api_key
from .common import customer_company, secrets_of


@tagged("post_install", "-at_install")
class TestResellerApi(ApiCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.northwind = customer_company(
            cls.env, "Northwind Traders", esd_reseller_id=cls.reseller.id
        )
        cls.other_reseller = customer_company(cls.env, "Other Reseller", esd_role="reseller")
        cls.other_user = cls.api_user_of(cls.other_reseller, "other_api")
        cls.other_key = make_api_key(cls.other_user)
        # A customer's portal user with a key but no API grant.
        contoso = customer_company(cls.env, "Contoso Ltd")
        customer = new_test_user(cls.env, "contoso_portal", groups="base.group_portal")
        customer.partner_id.parent_id = contoso
        cls.customer_key = make_api_key(customer)
        cls.employee_key = make_api_key(
            new_test_user(cls.env, "api_sales", groups="sales_team.group_sale_salesman")
        )

    def setUp(self):
        super().setUp()
        self.receiver = Receiver()
        self.addCleanup(self.receiver.stop)

    def order(self, quantity=1, customer="self", key=None, **extra):
        body = {"customer": customer, "lines": [{"sku": self.sku, "quantity": quantity}], **extra}
        response = self.call("POST", "/orders", key=key, body=body)
        self.assertEqual(response.status_code, 201, response.text)
        return response.json()

    def deliver(self):
        """What the crons do next: provision, invoice, email, send the webhooks."""
        self.env["esd.asset"]._esd_provision_pending()
        self.env["esd.asset"]._esd_send_pending_welcome()
        self.env["esd.webhook.delivery"]._esd_send_pending()

    # ------------------------------------------------------------------ the scenario
    def test_reseller_system_orders_tracks_and_returns(self):
        """Done when: a new end customer, 3 licenses, signed webhooks, keys, a return credited."""
        hook = self.call(
            "POST",
            "/webhooks",
            body={"url": self.receiver.url, "events": ["license.delivered", "license.returned"]},
        )
        self.assertEqual(hook.status_code, 201, hook.text)
        secret = hook.json()["secret"]
        customer = self.call(
            "POST",
            "/customers",
            body={
                "name": "Adatum Corp",
                "email": "it@adatum.example",
                "phone": "+1 555 0100",
                "street": "1 Main St",
                "city": "Seattle",
                "zip": "98101",
                "state": "WA",
                "country": "US",
            },
        )
        self.assertEqual(customer.status_code, 201, customer.text)
        order = self.order(3, customer.json()["id"], reference="PO-2024-001")
        self.assertEqual(order["reference"], "PO-2024-001")
        self.assertEqual(order["customer"]["name"], "Adatum Corp")
        self.assertEqual(len(order["licenses"]), 3)
        self.assertEqual({lic["state"] for lic in order["licenses"]}, {"to_order"})
        first = self.call("GET", f"/licenses/{order['licenses'][0]['id']}")
        self.assertIsNone(first.json()["key"])
        self.assertEqual(first.headers["Retry-After"], "5")

        self.deliver()
        delivered = self.receiver.accepted("license.delivered")
        self.assertEqual(len(delivered), 3)
        verifier = standardwebhooks.Webhook(secret)
        for headers, body, payload in delivered:
            self.assertEqual(verifier.verify(body, headers)["type"], "license.delivered")
            self.assertNotIn("key", payload["data"]["license"])
        licenses = self.env["esd.asset"].browse([lic["id"] for lic in order["licenses"]])
        for asset in licenses:
            self.assertTrue(any(p["data"]["license"]["id"] == asset.id for *_x, p in delivered))
            token, link = secrets_of(asset)
            self.assertFalse(any(token in b.decode() for _h, b, _p in self.receiver.accepted()))
            answer = self.call("GET", f"/licenses/{asset.id}").json()
            self.assertEqual(answer["state"], "delivered")
            self.assertTrue(answer["key"] == token and answer["activation_link"] == link)

        returned = self.call("POST", f"/licenses/{licenses[0].id}/return", body={"comment": "x"})
        self.assertEqual(returned.status_code, 202, returned.text)
        self.assertEqual(returned.json()["cancellation_request"], "pending")
        licenses[0].with_user(self.manager).action_approve_cancellation()
        self.env["esd.asset"]._cron_finish_returns()
        self.env["esd.webhook.delivery"]._esd_send_pending()
        answer = self.call("GET", f"/licenses/{licenses[0].id}").json()
        self.assertEqual(answer["state"], "credited")
        self.assertEqual(answer["credit_note"]["amount_total"], licenses[0].sudo().invoice_amount)
        self.assertIsNone(answer["key"], "a returned license's key is not given any more")
        ((_h, _b, payload),) = self.receiver.accepted("license.returned")
        self.assertEqual(payload["data"]["license"]["id"], licenses[0].id)

        # The same calls with another reseller's key, a customer's key or no key.
        path = f"/licenses/{licenses[1].id}"
        self.problem(self.call("GET", path, key=self.other_key), 404, "not-found")
        self.problem(self.call("GET", path, key=self.customer_key), 403, "forbidden")
        self.problem(self.call("GET", path, key=False), 401, "unauthorized")
        self.problem(
            self.call("GET", f"/orders/{order['id']}", key=self.other_key), 404, "not-found"
        )
        self.problem(
            self.call("POST", f"{path}/return", key=self.other_key, body={}), 404, "not-found"
        )

    # ------------------------------------------------------------------ orders
    def test_same_idempotency_key_same_order(self):
        key, body = str(uuid.uuid4()), {"lines": [{"sku": self.sku, "quantity": 2}]}
        first = self.call("POST", "/orders", body=body, idempotency=key)
        again = self.call("POST", "/orders", body=body, idempotency=key)
        self.assertEqual(again.status_code, 201)
        self.assertEqual(again.json()["id"], first.json()["id"])
        self.assertEqual(again.headers.get("Idempotent-Replayed"), "true")
        other = self.call("POST", "/orders", body={**body, "reference": "B"}, idempotency=key)
        self.problem(other, 409, "idempotency-key-reused")
        # Keys are the caller's own: another reseller's same key is another request.
        theirs = self.call("POST", "/orders", key=self.other_key, body=body, idempotency=key)
        self.assertEqual(theirs.status_code, 201)
        self.assertNotEqual(theirs.json()["id"], first.json()["id"])
        missing = self.call("POST", "/orders", body=body, idempotency=False)
        self.problem(missing, 400, "idempotency-key-required")

    def test_retry_after_a_dropped_connection_makes_one_order(self):
        """The client sends its order and drops the connection before the answer; it sends the
        same request again with the same Idempotency-Key: one order."""
        key, reference = str(uuid.uuid4()), f"DROP-{uuid.uuid4().hex[:8]}"
        payload = json.dumps(
            {"reference": reference, "lines": [{"sku": self.sku, "quantity": 1}]}
        ).encode()
        host, port = self.base_url().removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                (
                    f"POST {PREFIX}/orders HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {self.key}\r\nIdempotency-Key: {key}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
                + payload
            )
            sock.shutdown(socket.SHUT_WR)  # gone before the answer is read
        retry = self.call(
            "POST",
            "/orders",
            raw=payload,
            idempotency=key,
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(retry.status_code, 201, retry.text)
        # The dropped request may be served after the retry (it then replays the kept answer):
        # wait for it, as the test's cursor is the one the server threads use.
        self._wait_remaining_requests()
        orders = self.env["sale.order"].search([("client_order_ref", "=", reference)])
        self.assertEqual(len(orders), 1)
        self.assertEqual(retry.json()["id"], orders.id)

    def test_order_refusals_change_nothing(self):
        before = self.env["sale.order"].search_count([])
        unknown = self.call("POST", "/orders", body={"lines": [{"sku": "NOPE", "quantity": 1}]})
        body = self.problem(unknown, 422, "validation-failed")
        self.assertEqual(body["errors"][0]["pointer"], "/lines/0")
        malformed = self.call("POST", "/orders", body={"lines": [{"sku": self.sku, "quantity": 0}]})
        self.problem(malformed, 400, "invalid-request")
        stranger = self.call(
            "POST",
            "/orders",
            body={
                "customer": self.northwind.id + 10**6,
                "lines": [{"sku": self.sku, "quantity": 1}],
            },
        )
        self.problem(stranger, 422, "validation-failed")
        self.instance.sudo().country_id = self.env.ref("base.be")
        refused = self.call("POST", "/orders", body={"lines": [{"sku": self.sku, "quantity": 1}]})
        self.problem(refused, 422, "country-refused")
        self.instance.sudo().country_id = self.env.ref("base.us")
        self.env.company.account_use_credit_limit = True
        self.reseller.credit_limit = 50
        over = self.call("POST", "/orders", body={"lines": [{"sku": self.sku, "quantity": 1}]})
        self.problem(over, 422, "credit-limit-exceeded")
        self.problem(self.call("POST", "/orders", raw=b"{", body={}), 400, "invalid-request")
        self.assertEqual(self.env["sale.order"].search_count([]), before)

    def test_orders_by_reference_and_chatter(self):
        order = self.order(1, reference="REF-42")
        listed = self.call("GET", "/orders").json()["items"]
        self.assertIn(order["id"], [o["id"] for o in listed])
        found = self.call("GET", "/orders?reference=REF-42").json()["items"]
        self.assertEqual([o["id"] for o in found], [order["id"]])
        self.assertEqual(self.call("GET", f"/orders/{order['id']}").json()["name"], order["name"])
        record = self.env["sale.order"].browse(order["id"])
        self.assertEqual(record.state, "sale")
        self.assertEqual(record.partner_id, self.api_user.partner_id)
        self.assertIn("test key", record.message_ids[0].body)
        self.assertFalse(
            self.call("GET", "/orders?reference=REF-42", key=self.other_key).json()["items"]
        )

    # ------------------------------------------------------------------ customers and products
    def test_customers_validated_as_the_shop(self):
        listed = self.call("GET", "/customers").json()["items"]
        self.assertIn(self.northwind.id, [c["id"] for c in listed])
        self.assertNotIn(
            self.northwind.id,
            [c["id"] for c in self.call("GET", "/customers", key=self.other_key).json()["items"]],
        )
        missing = self.call("POST", "/customers", body={"name": "Tailspin", "country": "US"})
        body = self.problem(missing, 422, "validation-failed")
        self.assertIn("Microsoft contact email", body["detail"])
        duplicate = self.call(
            "POST",
            "/customers",
            body={
                "name": "northwind traders ",
                "email": "a@b.example",
                "country": "US",
                "state": "WA",
                "zip": "98101",
                "street": "x",
                "city": "y",
                "phone": "1",
            },
        )
        self.assertEqual(
            self.problem(duplicate, 409, "duplicate-customer")["existing_id"], self.northwind.id
        )

    def test_products_at_the_reseller_price(self):
        products = self.call("GET", "/products").json()["items"]
        office = next(p for p in products if p["sku"] == self.sku)
        self.assertEqual(
            office["price"], {"amount": 100.0, "currency": self.env.company.currency_id.name}
        )
        self.assertTrue(office["returnable"])

    # ------------------------------------------------------------------ licenses
    def test_license_pages_by_cursor(self):
        self.order(5)
        seen, cursor = [], None
        while True:
            query = "/licenses?limit=2" + (f"&cursor={cursor}" if cursor else "")
            page = self.call("GET", query).json()
            seen += [lic["id"] for lic in page["items"]]
            if not page["next_cursor"]:
                break
            cursor = page["next_cursor"]
            # A license changing between pages is neither skipped nor repeated.
            self.env["esd.asset"].browse(seen[0]).sudo().write({"active": True})
        self.assertEqual(seen, sorted(set(seen)))
        self.assertGreaterEqual(len(seen), 5)
        self.problem(self.call("GET", "/licenses?cursor=garbage"), 400, "invalid-cursor")
        other = self.call("GET", f"/licenses?state=failed&cursor={cursor or 'x'}")
        self.problem(other, 400, "invalid-cursor")
        self.problem(self.call("GET", "/licenses?state=nope"), 400, "invalid-request")
        self.assertFalse(self.call("GET", "/licenses", key=self.other_key).json()["items"])

    def test_return_follows_the_portal_rules(self):
        order = self.order(2)
        self.deliver()
        first, second = (lic["id"] for lic in order["licenses"])
        self.assertEqual(self.call("POST", f"/licenses/{first}/return").status_code, 202)
        self.problem(
            self.call("POST", f"/licenses/{first}/return"), 409, "return-already-requested"
        )
        self.env["esd.asset"].browse(second).sudo().token_status = "redeemed"
        self.problem(self.call("POST", f"/licenses/{second}/return"), 422, "not-returnable")
        colleague = self.api_user_of(self.reseller, "fabrikam_colleague")
        self.problem(
            self.call("POST", f"/licenses/{second}/return", key=make_api_key(colleague)),
            403,
            "license-not-yours",
        )
        note = self.env["esd.asset"].browse(first).message_ids.mapped("body")
        self.assertTrue(any("test key" in str(body) for body in note))

    # ------------------------------------------------------------------ errors and limits
    def test_who_may_call(self):
        self.assertEqual(self.call("GET", "/me").json()["reseller"]["id"], self.reseller.id)
        self.problem(self.call("GET", "/me", key="0" * 40), 401, "unauthorized")
        self.problem(self.call("GET", "/me", key=self.employee_key), 403, "forbidden")
        self.problem(self.call("GET", "/me", key=self.customer_key), 403, "forbidden")
        self.api_user.partner_id.with_user(self.manager).action_esd_deny_api()
        self.problem(self.call("GET", "/me"), 403, "forbidden")
        self.problem(self.call("PUT", "/orders", body={}, check=False), 405, "method-not-allowed")

    def test_only_api_users_read_the_resellers_webhooks(self):
        """A colleague at the reseller without the API grant reads none of its endpoints or
        messages over JSON-RPC (an endpoint's URL may carry the receiver's own secret); an API
        user reads them until its grant ends."""
        self.call("POST", "/webhooks", body={"url": self.receiver.url, "events": ["price.changed"]})
        endpoint = self.env["esd.webhook.endpoint"].search([("partner_id", "=", self.reseller.id)])
        self.assertTrue(endpoint)
        price = {"product_id": 1, "sku": None, "name": "x", "old_price": 1.0, "price": 2.0}
        self.reseller._esd_webhook_price_changed([dict(price, currency="USD")])
        delivery = endpoint.delivery_ids
        self.assertEqual(len(delivery), 1)
        colleague = new_test_user(self.env, "fabrikam_sales", groups="base.group_portal")
        colleague.partner_id.parent_id = self.reseller

        def read(login, model):
            self.env.flush_all()  # the server's cursor is the test's: it sees what was written
            self.authenticate(login, login)
            return self.make_jsonrpc_request(
                "/web/dataset/call_kw",
                {
                    "model": model,
                    "method": "search_read",
                    "args": [[]],
                    "kwargs": {"fields": ["id"]},
                },
            )

        self.assertEqual(read("fabrikam_api", "esd.webhook.endpoint"), [{"id": endpoint.id}])
        self.assertEqual(read("fabrikam_api", "esd.webhook.delivery"), [{"id": delivery.id}])
        self.assertEqual(read("fabrikam_sales", "esd.webhook.endpoint"), [])
        self.assertEqual(read("fabrikam_sales", "esd.webhook.delivery"), [])
        self.api_user.partner_id.with_user(self.manager).action_esd_deny_api()
        Grant = self.env["esd.grant"].sudo()
        self.assertFalse(Grant.search([("user_id", "=", self.api_user.id), ("scope", "=", "api")]))
        self.assertEqual(read("fabrikam_api", "esd.webhook.endpoint"), [])

    def test_manager_makes_a_key_for_a_reseller(self):
        action = self.api_user.partner_id.with_user(self.manager).action_esd_make_api_key()
        key = action["context"]["default_key"]
        self.assertEqual(self.call("GET", "/me", key=key).json()["user"]["id"], self.api_user.id)
        note = self.api_user.partner_id.message_ids[0].body
        self.assertIn("made an API key", note)
        self.assertFalse(key in note, "the chatter never holds the key")

    def test_rate_limit_answers_429(self):
        self.env["ir.config_parameter"].set_param("microsoft_esd.api_rate_limit", "3")
        answers = [self.call("GET", "/me") for _call in range(4)]
        self.assertEqual([a.status_code for a in answers[:3]], [200, 200, 200])
        self.assertEqual(answers[0].headers["RateLimit-Limit"], "3")
        self.problem(answers[3], 429, "rate-limited")
        self.assertGreater(int(answers[3].headers["Retry-After"]), 0)
        self.assertEqual(self.call("GET", "/me", key=self.other_key).status_code, 200)

    def test_documents_are_served(self):
        doc = requests.get(f"{self.base_url()}{PREFIX}/openapi.json", timeout=30).json()
        self.assertEqual(doc["openapi"], "3.1.0")
        self.assertEqual(
            self.call("GET", "/problems/rate-limited", key=False).json()["status"], 429
        )

    # ------------------------------------------------------------------ webhooks
    def test_webhook_urls_refused(self):
        for url in (
            "http://example.com/x",
            "https://10.0.0.1/x",
            "https://localhost/x",
            "https://user:pw@example.com/",
            "ftp://example.com/",
        ):
            answer = self.call("POST", "/webhooks", body={"url": url, "events": ["order.invoiced"]})
            self.problem(answer, 422, "url-refused")
        unknown = self.call("POST", "/webhooks", body={"url": self.receiver.url, "events": ["x"]})
        self.problem(unknown, 400, "invalid-request")

    def test_webhook_log_replay_and_removal(self):
        hook = self.call(
            "POST", "/webhooks", body={"url": self.receiver.url, "events": ["order.invoiced"]}
        ).json()
        self.order(1)
        self.deliver()
        log = self.call("GET", f"/webhooks/{hook['id']}/deliveries").json()["items"]
        self.assertEqual([(d["event"], d["state"]) for d in log], [("order.invoiced", "delivered")])
        replay = self.call("POST", f"/webhooks/{hook['id']}/deliveries/{log[0]['id']}/replay")
        self.assertEqual(replay.json()["state"], "pending")
        self.env["esd.webhook.delivery"]._esd_send_pending()
        ids = [h["webhook-id"] for h, _b, _p in self.receiver.accepted("order.invoiced")]
        self.assertEqual(ids, [log[0]["message_id"]] * 2, "a replay keeps the message's id")
        self.problem(
            self.call("GET", f"/webhooks/{hook['id']}", key=self.other_key), 404, "not-found"
        )
        self.problem(
            self.call(
                "POST",
                f"/webhooks/{hook['id']}/deliveries/{log[0]['id']}/replay",
                key=self.other_key,
            ),
            404,
            "not-found",
        )
        self.assertEqual(self.call("DELETE", f"/webhooks/{hook['id']}").json()["removed"], True)
        self.assertFalse(self.call("GET", "/webhooks").json()["items"])

    def test_outbox_rolls_back_with_the_change(self):
        self.call(
            "POST", "/webhooks", body={"url": self.receiver.url, "events": ["license.failed"]}
        )
        order = self.order(1)
        asset = self.env["esd.asset"].browse(order["licenses"][0]["id"])
        Delivery = self.env["esd.webhook.delivery"]
        before = Delivery.search_count([])
        with self.assertRaises(RuntimeError), self.env.cr.savepoint():
            asset.sudo()._esd_set_failed("CIS refused")
            self.assertEqual(Delivery.search_count([]), before + 1)
            raise RuntimeError("the change is undone")
        self.assertEqual(Delivery.search_count([]), before, "no message without its change")

    def test_price_changed_webhook(self):
        """A reseller's price change, as the price-change job announces it, reaches its
        endpoint as ``price.changed`` with its own prices, never the cost."""
        self.call("POST", "/webhooks", body={"url": self.receiver.url, "events": ["price.changed"]})
        self.reseller._esd_price_changes_announced(
            [
                {
                    "product_tmpl_id": self.office.id,
                    "esd_product_id": self.office.esd_product_id,
                    "name": self.office.name,
                    "instance_id": self.office.esd_instance_id.id,
                    "pricelist_id": False,
                    "currency": "USD",
                    "old_price": 80.0,
                    "new_price": 90.0,
                    "changed_at": "2026-12-01 10:00:00",
                }
            ]
        )
        self.env["esd.webhook.delivery"]._esd_send_pending()
        ((_h, _b, payload),) = self.receiver.accepted("price.changed")
        expected = {
            "product_id": self.office.product_variant_id.id,
            "sku": self.sku,
            "name": self.office.name,
            "old_price": 80.0,
            "price": 90.0,
            "currency": "USD",
        }
        self.assertEqual(payload["data"]["products"], [expected])

    def test_portal_api_page(self):
        self.authenticate(self.api_user.login, self.api_user.login)
        page = self.url_open("/my/esd/api")
        self.assertEqual(page.status_code, 200)
        self.assertIn(f"{PREFIX}/openapi.json", page.text)
        self.authenticate("contoso_portal", "contoso_portal")
        self.assertEqual(self.url_open("/my/esd/api").status_code, 404)
