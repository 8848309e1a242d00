from urllib.parse import urlparse

from odoo import http
from odoo.http import request
from odoo.tools import email_normalize

from odoo.addons.website_sale.controllers.main import WebsiteSale


class EsdWebsiteSale(WebsiteSale):
    """The shop: a reseller says whom the licenses are for; N licenses are N lines to pay."""

    @http.route()
    def cart(self, access_token=None, revive="", **post):
        order = request.website.sale_get_order()
        if order:
            order._esd_merge_cart_lines()
        return super().cart(access_token=access_token, revive=revive, **post)

    @http.route()
    def shop_confirm_order(self, **post):
        """Odoo prices the cart at each line's quantity; then one line per license, each at the
        price of N (the invoice has one line per license, and its total must be what the
        customer paid: taxes round per line). A reseller says next whom they are for."""
        order = request.website.sale_get_order()
        if order:
            order._esd_merge_cart_lines()
        response = super().shop_confirm_order(**post)
        if order and order.state == "draft":
            order.order_line._esd_split()
            location = urlparse(response.headers.get("Location") or "").path
            if location == "/shop/payment" and order._esd_is_reseller_cart():
                return request.redirect("/shop/esd_customer")
        return response

    @http.route()
    def shop_payment(self, **post):
        order = request.website.sale_get_order()
        if order and order.state == "draft" and not order._esd_ready_for_payment():
            # Changed since it was confirmed (in another tab, say): priced and split again.
            return request.redirect("/shop/confirm_order")
        return super().shop_payment(**post)

    def _get_express_shop_payment_values(self, order, **kwargs):
        """No express checkout for a reseller's cart that does not say yet whom its licenses
        are for: it would pay at once, skipping that step, and the payment refuses it."""
        values = super()._get_express_shop_payment_values(order, **kwargs)
        if order._esd_needs_end_customer_choice():
            values["providers_sudo"] = request.env["payment.provider"].sudo()
        return values

    def _get_shop_payment_errors(self, order):
        """Odoo's, and what blocks the licenses: a reseller's answer missing, an end customer in
        a country the product's instance does not sell to, a license priced below its cost (the
        payment refuses them too)."""
        errors = super()._get_shop_payment_errors(order)
        if not order or order.state != "draft":
            return errors
        if order.get_portal_last_transaction().state in ("pending", "authorized", "done"):
            # Paid (in another browser session, say): /shop/payment/validate raises these, and
            # the customer must land on the confirmation; the provisioning job refuses a
            # license CIS would refuse.
            return errors
        if order._esd_needs_end_customer_choice():
            errors.append(
                (
                    request.env._("Whom are these licenses for?"),
                    request.env._(
                        "Tell us whom the licenses are for (your company or one of your "
                        "customers) in the previous step before you pay."
                    ),
                )
            )
        customer = order.esd_end_customer_id.commercial_partner_id
        if customer:
            errors.extend(
                (request.env._("These licenses cannot be sold to %s.", customer.name), refusal)
                for refusal in order._esd_country_refusals(customer)
            )
        errors.extend(
            (request.env._("This price is below our cost."), refusal)
            for refusal in order._esd_below_cost_refusals()
        )
        return errors

    # ------------------------------------------------------------------ whom for
    @http.route(
        "/shop/esd_customer",
        type="http",
        auth="public",
        methods=["GET", "POST"],
        website=True,
        sitemap=False,
    )
    def shop_esd_customer(self, **post):
        """The reseller's extra step: for its company, one of its customers, or a new one."""
        order = request.website.sale_get_order()
        if redirection := self._check_cart_and_addresses(order):
            return redirection
        if not order._esd_is_reseller_cart():
            return request.redirect("/shop/payment")
        errors = []
        if request.httprequest.method == "POST":
            errors = self._esd_save_end_customer(order, post)
            if not errors:
                return request.redirect("/shop/payment")
        return request.render(
            "microsoft_esd.checkout_esd_customer",
            self._esd_customer_values(order, post, errors),
        )

    def _esd_customer_values(self, order, post, errors):
        reseller = order.partner_id.commercial_partner_id
        search = (post.get("search") or "").strip()
        customers = reseller._esd_end_customers().sorted("name")
        if search:
            customers = customers.filtered(lambda p: search.lower() in (p.name or "").lower())
        mode = post.get("mode") or (
            "customer" if order.esd_end_customer_id else order.esd_checkout_choice or "company"
        )
        return {
            "website_sale_order": order,
            "order": order,
            "end_customers": customers,
            "selected_id": int(post.get("end_customer_id") or order.esd_end_customer_id.id or 0),
            "search": search,
            "mode": mode,
            "countries": request.env["res.country"].sudo().search([]),
            "form": post,
            "errors": errors,
        }

    def _esd_save_end_customer(self, order, post):
        """Record the reseller's answer, or return what is wrong (nothing is created then)."""
        mode = post.get("mode")
        reseller = order.partner_id.commercial_partner_id
        if mode == "company":
            order._esd_set_end_customer(False)
            return []
        if mode == "customer":
            customer_id = post.get("end_customer_id") or ""
            customer = reseller._esd_end_customers().filtered(
                lambda p: str(p.id) == customer_id.strip()
            )
            if not customer:
                return [request.env._("Choose one of your customers in the list.")]
            refusals = order._esd_country_refusals(customer)
            if refusals:
                return refusals
            order._esd_set_end_customer(customer)
            return []
        if mode == "new":
            values, errors = self._esd_new_customer_values(
                reseller,
                post,
                lambda values: self._complete_address_values(values, "billing", False, order),
            )
            if errors:
                return errors
            known = reseller._esd_end_customer_named(values["name"])
            if known:
                return [
                    request.env._(
                        "%s is already one of your customers: choose it in the list.",
                        known.name,
                    )
                ]
            probe = request.env["res.partner"].new(values)
            refusals = order._esd_country_refusals(probe)
            if refusals:
                return refusals
            order._esd_set_end_customer(reseller._esd_create_end_customer(values))
            return []
        return [request.env._("Tell us whom the licenses are for.")]

    # The new end customer's form: what Odoo's address form asks of a customer.
    _esd_new_customer_fields = (
        "name",
        "email",
        "phone",
        "street",
        "street2",
        "zip",
        "city",
        "state_id",
        "country_id",
    )

    def _esd_new_customer_values(self, reseller, post, complete):
        """The new end customer of ``reseller``, or the errors: validated as Odoo validates a
        shop customer's address (``_validate_address_values``), and as Sync Options validates an
        ESD customer (a company, a valid Microsoft contact email, a country); completed by
        ``complete(values)`` (the shop: as Odoo completes a new shop customer, with
        ``_complete_address_values``: the website's language, company and salesperson), yet a
        company of its own, not an address of the reseller. The reseller API validates the
        customers it creates here too."""
        form = {key: post.get(key) or "" for key in self._esd_new_customer_fields}
        values, _extra = self._parse_form_data(form)
        values = {key: value for key, value in values.items() if value}
        state = request.env["res.country.state"].sudo().browse(values.get("state_id") or [])
        if state and state.country_id.id != values.get("country_id"):
            del values["state_id"]  # one of another country (the form lists them all)
        _invalid, missing, errors = self._validate_address_values(
            values,
            request.env["res.partner"],
            "billing",
            False,
            "name,email,country_id",
            is_main_address=True,
        )
        email = email_normalize(values.get("email") or "")
        esd_errors = []
        if not values.get("name"):
            esd_errors.append(request.env._("Give the company name of your customer."))
        if not email:
            esd_errors.append(
                request.env._("Give a valid Microsoft contact email (name@company.com).")
            )
        if not values.get("country_id"):
            esd_errors.append(request.env._("Choose the country of your customer."))
        if missing:
            # Odoo's form marks the empty fields; this one names them.
            partner_fields = request.env["res.partner"]._fields
            errors.append(
                request.env._(
                    "Fill in: %s.",
                    ", ".join(
                        partner_fields[name].get_description(request.env)["string"]
                        for name in self._esd_new_customer_fields
                        if name in missing
                    ),
                )
            )
        errors = esd_errors + [error for error in errors if error not in esd_errors]
        if errors:
            return values, errors
        complete(values)
        values.pop("parent_id", None)  # its own company, whose reseller is the order's customer
        values.update(
            {
                "type": "contact",
                "is_company": True,
                "email": email,
                "esd_email": email,
                "esd_role": "user",
                "esd_reseller_id": reseller.id,
            }
        )
        return values, []
