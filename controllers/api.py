"""The reseller API, ``/api/esd/v1``: JSON over Odoo's API keys (``auth="bearer"``).

Thin: each route parses the request, lets the models do the work as the caller (record rules
decide what a key sees, the models check their caller before any sudo write) and answers. Every
error is a problem details object (RFC 9457, ``models/ir_http.py``); a refused request changes
nothing (its transaction is rolled back). The contract is docs/reseller-api.openapi.json.
"""

from pathlib import Path

from odoo import fields, http
from odoo.exceptions import AccessError, MissingError, UserError
from odoo.http import request

from ..microsoft_esd import api as rules
from ..microsoft_esd.api import PREFIX, Problem
from ..models.esd_api_access import api_env
from .website_sale import EsdWebsiteSale

OPENAPI = Path(__file__).resolve().parent.parent / "docs" / "reseller-api.openapi.json"
ROUTE = {
    "type": "http",
    "auth": "bearer",
    "csrf": False,
    "save_session": False,
    "sitemap": False,
}
LICENSE_STATES = {
    "to_order",
    "waiting",
    "failed",
    "delivered",
    "stopped",
    "return_requested",
    "returned",
    "credited",
    "returned_elsewhere",
}
CUSTOMER_FIELDS = ("name", "email", "phone", "street", "street2", "zip", "city")


class Caller:
    """Who calls: the environment the API works in (the caller's rights, its grant's company),
    its grant and its API key's id and name."""

    def __init__(self, env, grant, key_id, key_name):
        self.env, self.grant, self.key_id, self.key_name = env, grant, key_id, key_name


def json_response(status, body, headers=None):
    return request.make_json_response(body, headers=list((headers or {}).items()), status=status)


class EsdResellerApi(http.Controller):
    # ------------------------------------------------------------------ plumbing
    def _esd_caller(self):
        """The caller, once its key is counted (429 past the rate limit) and its grant checked."""
        header = request.httprequest.headers.get("Authorization") or ""
        scheme, _space, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Problem("unauthorized", "Send Authorization: Bearer <API key>.")
        key_id, key_name = request.env["res.users.apikeys"]._esd_key_of(token.strip())
        if not key_id:
            raise Problem("unauthorized")
        allowed, limit, remaining, reset = request.env["esd.api.rate"].sudo()._esd_hit(key_id)
        request.esd_rate_headers = {
            "RateLimit-Limit": str(limit),
            "RateLimit-Remaining": str(remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            raise Problem(
                "rate-limited",
                f"At most {limit} requests a minute per API key.",
                headers={"Retry-After": str(reset), **request.esd_rate_headers},
            )
        try:
            env, grant = api_env(request.env)
        except AccessError as exc:
            raise Problem("forbidden", str(exc)) from None
        env = env(context=dict(env.context, esd_api_key_name=key_name))
        return Caller(env, grant, key_id, key_name)

    def _esd_serve(self, handlers, creating=()):
        """Run the handler of the request's method, ``handler(caller)`` or, for a method in
        ``creating``, ``handler(caller, body)`` under its Idempotency-Key. A handler returns
        (status, body, headers)."""
        method = request.httprequest.method
        if method not in handlers:
            raise Problem("method-not-allowed", headers={"Allow": ", ".join(sorted(handlers))})
        caller = self._esd_caller()
        try:
            if method in creating:
                status, body, headers = self._esd_idempotent(caller, handlers[method])
            else:
                status, body, headers = handlers[method](caller)
        except MissingError:
            raise Problem("not-found") from None
        except AccessError as exc:
            raise Problem("forbidden", str(exc)) from None
        except UserError as exc:
            raise Problem("validation-failed", str(exc)) from None
        return json_response(status, body, {**request.esd_rate_headers, **headers})

    def _esd_idempotent(self, caller, handler):
        """The same answer for the same Idempotency-Key and request; 409 for another request."""
        headers = request.httprequest.headers
        key = rules.check_idempotency_key(headers.get("Idempotency-Key"))
        body = rules.parse_json(request.httprequest.get_data(), headers.get("Content-Type"))
        fingerprint = rules.fingerprint("POST", request.httprequest.path, body)
        Idempotency = caller.env["esd.api.idempotency"]
        kept = Idempotency._esd_claim(key, fingerprint, caller.key_id)
        if kept:
            status, answer, location = kept
            replayed = {"Idempotent-Replayed": "true"}
            return status, answer, {**replayed, **({"Location": location} if location else {})}
        status, answer, extra = handler(caller, body)
        Idempotency._esd_keep(key, status, answer, extra.get("Location"))
        return status, answer, extra

    def _esd_page(self, caller, search, filters, to_values):
        """One page of ``search(after_id, limit)``, continued by a cursor bound to ``filters``."""
        args = request.httprequest.args
        after = rules.decode_cursor(args.get("cursor"), filters)
        records, more = search(after, rules.page_size(args.get("limit")))
        cursor = rules.encode_cursor(records[-1].id, filters) if more and records else None
        return 200, {"items": [to_values(r) for r in records], "next_cursor": cursor}, {}

    def _esd_record(self, env, model, record_id):
        """The record ``record_id`` if the caller's record rules show it; else 404."""
        record = env[model].search([("id", "=", record_id)])
        if not record:
            raise Problem("not-found")
        return record

    # ------------------------------------------------------------------ public documents
    @http.route(f"{PREFIX}/openapi.json", type="http", auth="public", sitemap=False)
    def openapi(self, **kw):
        return request.make_response(
            OPENAPI.read_bytes(), headers=[("Content-Type", "application/json")]
        )

    @http.route(f"{PREFIX}/problems/<string:slug>", type="http", auth="public", sitemap=False)
    def problem_type(self, slug, **kw):
        if slug not in rules.PROBLEMS:
            raise Problem("not-found")
        status, title, about = rules.PROBLEMS[slug]
        body = {"type": rules.problem_type(slug), "title": title, "status": status}
        return json_response(200, {**body, "about": about})

    # ------------------------------------------------------------------ who am I
    @http.route(f"{PREFIX}/me", **ROUTE)
    def me(self, **kw):
        def get(caller):
            grant = caller.grant.sudo()
            return (
                200,
                {
                    "user": {"id": caller.env.user.id, "name": caller.env.user.name},
                    "reseller": {"id": grant.partner_id.id, "name": grant.partner_id.name},
                    "company": {"id": grant.company_id.id, "name": grant.company_id.name},
                    "api_key": caller.key_name,
                },
                {},
            )

        return self._esd_serve({"GET": get})

    # ------------------------------------------------------------------ products
    @http.route(f"{PREFIX}/products", **ROUTE)
    def products(self, **kw):
        def get(caller):
            grant = caller.grant.sudo()
            pricelist = grant.partner_id.with_company(grant.company_id).property_product_pricelist
            products = caller.env["product.product"]._esd_api_sellable(grant.company_id)
            return 200, {"items": [p._esd_api_values(pricelist) for p in products]}, {}

        return self._esd_serve({"GET": get})

    # ------------------------------------------------------------------ customers
    @http.route(f"{PREFIX}/customers", **ROUTE)
    def customers(self, **kw):
        def get(caller):
            Partner = caller.env["res.partner"]
            return self._esd_page(
                caller, Partner._esd_api_customers, {}, lambda p: p._esd_api_customer_values()
            )

        def post(caller, body):
            customer = self._esd_new_customer(caller, body)
            location = f"{PREFIX}/customers/{customer.id}"
            return 201, customer._esd_api_customer_values(), {"Location": location}

        return self._esd_serve({"GET": get, "POST": post}, creating={"POST"})

    def _esd_new_customer(self, caller, body):
        """An end customer of the caller's reseller, validated as the shop validates one."""
        unknown = sorted(set(body) - {*CUSTOMER_FIELDS, "country", "state"})
        form = {name: body.get(name) for name in CUSTOMER_FIELDS}
        errors = [{"pointer": f"/{name}", "detail": "is not a field"} for name in unknown]
        errors += [
            {"pointer": f"/{name}", "detail": "must be a string"}
            for name, value in form.items()
            if value is not None and not isinstance(value, str)
        ]
        if errors:
            raise Problem("invalid-request", "The customer is not valid.", errors=errors)
        Country = caller.env["res.country"].sudo()
        country = Country.search([("code", "=ilike", body.get("country") or "-")], limit=1)
        if body.get("country") and not country:
            raise Problem(
                "validation-failed", errors=[{"pointer": "/country", "detail": "unknown country"}]
            )
        state = (
            caller.env["res.country.state"]
            .sudo()
            .search(
                [("country_id", "=", country.id), ("code", "=ilike", body.get("state") or "-")],
                limit=1,
            )
        )
        form.update(country_id=str(country.id or ""), state_id=str(state.id or ""))
        form = {name: value or "" for name, value in form.items()}
        grant = caller.grant.sudo()
        reseller = grant.partner_id

        def complete(values):
            values.update(company_id=grant.company_id.id, lang=reseller.lang)

        values, messages = EsdWebsiteSale()._esd_new_customer_values(reseller, form, complete)
        if messages:
            raise Problem(
                "validation-failed",
                " ".join(messages),
                errors=[{"detail": message} for message in messages],
            )
        known = reseller._esd_end_customer_named(values["name"])
        if known:
            raise Problem(
                "duplicate-customer",
                request.env._(
                    "%s is already one of your customers: choose it in the list.", known.name
                ),
                existing_id=known.id,
            )
        customer = reseller._esd_create_end_customer(values)
        customer.message_post(
            body=request.env._(
                "Registered as a customer of %(reseller)s through the reseller API by %(user)s "
                "with the API key %(key)s.",
                reseller=reseller.display_name,
                user=caller.env.user.name,
                key=caller.key_name,
            ),
            subtype_xmlid="mail.mt_note",
        )
        return customer.with_env(caller.env)

    # ------------------------------------------------------------------ orders
    @http.route(f"{PREFIX}/orders", **ROUTE)
    def orders(self, **kw):
        def get(caller):
            reference = request.httprequest.args.get("reference") or None
            Order = caller.env["sale.order"]
            return self._esd_page(
                caller,
                lambda after, limit: Order._esd_api_search(after, limit, reference),
                {"reference": reference},
                lambda order: order._esd_api_values(),
            )

        def post(caller, body):
            customer, reference, lines = rules.order_request(body)
            order = caller.env["sale.order"]._esd_api_create(
                customer, reference, lines, caller.key_name
            )
            return 201, order._esd_api_values(), {"Location": f"{PREFIX}/orders/{order.id}"}

        return self._esd_serve({"GET": get, "POST": post}, creating={"POST"})

    @http.route(f"{PREFIX}/orders/<int:order_id>", **ROUTE)
    def order(self, order_id, **kw):
        def get(caller):
            order = self._esd_record(caller.env, "sale.order", order_id)
            return 200, order._esd_api_values(), {}

        return self._esd_serve({"GET": get})

    # ------------------------------------------------------------------ licenses
    @http.route(f"{PREFIX}/licenses", **ROUTE)
    def licenses(self, **kw):
        def get(caller):
            args = request.httprequest.args
            state, customer = args.get("state") or None, args.get("customer") or None
            since = args.get("updated_since") or None
            if state and state not in LICENSE_STATES:
                raise rules.invalid("state", "one of " + ", ".join(sorted(LICENSE_STATES)))
            customer = customer and rules.parse_int(customer, "customer")
            since = since and self._esd_datetime(since, "updated_since")
            filters = {"state": state, "customer": customer, "updated_since": since}
            Asset = caller.env["esd.asset"]
            return self._esd_page(
                caller,
                lambda after, limit: Asset._esd_api_search(after, limit, state, customer, since),
                filters,
                lambda asset: asset._esd_api_values(),
            )

        return self._esd_serve({"GET": get})

    @staticmethod
    def _esd_datetime(value, where):
        try:
            parsed = fields.Datetime.to_datetime(value.replace("T", " ").rstrip("Z")[:19])
        except ValueError:
            parsed = None
        if not parsed:
            raise rules.invalid(where, "a date-time such as 2025-01-31T12:00:00Z (UTC)")
        return fields.Datetime.to_string(parsed)

    @http.route(f"{PREFIX}/licenses/<int:license_id>", **ROUTE)
    def license(self, license_id, **kw):
        def get(caller):
            asset = self._esd_record(caller.env, "esd.asset", license_id)
            wait = asset._esd_api_retry_after()
            headers = {"Retry-After": str(wait)} if wait else {}
            return 200, asset._esd_api_values(with_key=True), headers

        return self._esd_serve({"GET": get})

    @http.route(f"{PREFIX}/licenses/<int:license_id>/return", **ROUTE)
    def license_return(self, license_id, **kw):
        def post(caller):
            headers = request.httprequest.headers
            raw = request.httprequest.get_data()
            body = rules.parse_json(raw, headers.get("Content-Type")) if raw else {}
            comment = body.get("comment") or ""
            if not isinstance(comment, str):
                raise rules.invalid("/comment", "a string")
            asset = self._esd_record(caller.env, "esd.asset", license_id)
            asset._esd_api_request_return(comment.strip()[:2000], caller.key_name)
            return 202, asset._esd_api_values(), {}

        return self._esd_serve({"POST": post})

    # ------------------------------------------------------------------ webhooks
    @http.route(f"{PREFIX}/webhooks", **ROUTE)
    def webhooks(self, **kw):
        def get(caller):
            endpoints = caller.env["esd.webhook.endpoint"].search([], order="id")
            return 200, {"items": [e._esd_api_values() for e in endpoints]}, {}

        def post(caller, body):
            unknown = sorted(set(body) - {"url", "events"})
            if unknown:
                errors = [{"pointer": f"/{name}", "detail": "is not a field"} for name in unknown]
                raise Problem("invalid-request", errors=errors)
            endpoint, secret = caller.env["esd.webhook.endpoint"]._esd_register(
                body.get("url"), body.get("events"), f"API key {caller.key_name}"
            )
            values = {**endpoint._esd_api_values(), "secret": secret}
            return 201, values, {"Location": f"{PREFIX}/webhooks/{endpoint.id}"}

        return self._esd_serve({"GET": get, "POST": post}, creating={"POST"})

    @http.route(f"{PREFIX}/webhooks/<int:endpoint_id>", **ROUTE)
    def webhook(self, endpoint_id, **kw):
        def get(caller):
            endpoint = self._esd_record(caller.env, "esd.webhook.endpoint", endpoint_id)
            return 200, endpoint._esd_api_values(), {}

        def delete(caller):
            endpoint = self._esd_record(caller.env, "esd.webhook.endpoint", endpoint_id)
            endpoint._esd_remove(f"API key {caller.key_name}")
            return 200, {**endpoint._esd_api_values(), "removed": True}, {}

        return self._esd_serve({"GET": get, "DELETE": delete})

    @http.route(f"{PREFIX}/webhooks/<int:endpoint_id>/enable", **ROUTE)
    def webhook_enable(self, endpoint_id, **kw):
        def post(caller):
            endpoint = self._esd_record(caller.env, "esd.webhook.endpoint", endpoint_id)
            endpoint._esd_owner_enable(f"API key {caller.key_name}")
            return 200, endpoint._esd_api_values(), {}

        return self._esd_serve({"POST": post})

    @http.route(f"{PREFIX}/webhooks/<int:endpoint_id>/deliveries", **ROUTE)
    def webhook_deliveries(self, endpoint_id, **kw):
        def get(caller):
            self._esd_record(caller.env, "esd.webhook.endpoint", endpoint_id)
            Delivery = caller.env["esd.webhook.delivery"]

            def search(after, limit):
                found = Delivery.search(
                    [("endpoint_id", "=", endpoint_id), ("id", ">", after)],
                    order="id",
                    limit=limit + 1,
                )
                return found[:limit], len(found) > limit

            return self._esd_page(
                caller, search, {"endpoint": endpoint_id}, lambda d: d._esd_api_values()
            )

        return self._esd_serve({"GET": get})

    @http.route(f"{PREFIX}/webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/replay", **ROUTE)
    def webhook_replay(self, endpoint_id, delivery_id, **kw):
        def post(caller):
            delivery = caller.env["esd.webhook.delivery"].search(
                [("id", "=", delivery_id), ("endpoint_id", "=", endpoint_id)]
            )
            if not delivery:
                raise Problem("not-found")
            delivery._esd_owner_replay()
            return 202, delivery._esd_api_values(), {}

        return self._esd_serve({"POST": post})
