from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import clean_context

from ..microsoft_esd.api import Problem, iso
from .esd_api_access import api_grant


class SaleOrder(models.Model):
    """Orders placed through the reseller API, and how the API shows an order."""

    _inherit = "sale.order"

    esd_api_user_id = fields.Many2one(
        "res.users",
        "Ordered Through the API By",
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="The reseller's API user who placed this order through the reseller API; it is "
        "the order's buyer too, and sees the keys of its licenses as a shop buyer does.",
    )

    # ------------------------------------------------------------------ the API
    @api.model
    def _esd_api_create(self, customer, reference, lines, key_name):
        """Place and confirm the caller's reseller's order: for itself (``"self"``) or one of
        its end customers, billed to it on its payment terms at its pricelist's prices, with
        the checks of a backend order (sellable products, the CIS rules on the parties), the
        shop's country rules and the company's credit limit. Raises Problem when refused
        (nothing is kept: the request's transaction is rolled back)."""
        grant = api_grant(self.env)
        user, reseller, company = self.env.user, grant.partner_id, grant.company_id
        end_customer = self.env["res.partner"]
        errors = []
        if customer != "self":
            end_customer = reseller._esd_end_customers().filtered(lambda p: p.id == customer)
            if not end_customer:
                errors.append(
                    {"pointer": "/customer", "detail": f"{customer} is not one of your customers"}
                )
        sellable = self.env["product.product"]._esd_api_sellable(company)
        order_lines = []
        for index, (sku, product_id, quantity) in enumerate(lines):
            product = sellable.filtered(
                lambda p, s=sku, i=product_id: (p.esd_sku == s) if s else (p.id == i)
            )[:1]
            if not product:
                what = f"SKU {sku}" if sku else f"product {product_id}"
                errors.append({"pointer": f"/lines/{index}", "detail": f"{what} is not for sale"})
                continue
            order_lines.append(
                Command.create({"product_id": product.id, "product_uom_qty": quantity})
            )
        if errors:
            raise Problem("validation-failed", "The order cannot be placed.", errors=errors)
        Order = self.sudo().with_company(company).with_context(clean_context(self.env.context))
        order = Order.create(
            {
                "partner_id": user.partner_id.id,
                "company_id": company.id,
                "client_order_ref": reference or False,
                "esd_end_customer_id": end_customer.id,
                "esd_api_user_id": user.id,
                # The buyer sees the order's keys (a keys grant for this order, at confirmation).
                "esd_buyer_user_id": user.id,
                "order_line": order_lines,
            }
        )
        refusals = order._esd_country_refusals(end_customer or reseller)
        if refusals:
            raise Problem("country-refused", " ".join(refusals))
        if company.account_use_credit_limit and order.partner_credit_warning:
            raise Problem("credit-limit-exceeded", order.partner_credit_warning)
        try:
            order.action_confirm()
        except UserError as exc:
            raise Problem("validation-failed", str(exc)) from None
        order.message_post(
            body=self.env._(
                "Ordered through the reseller API by %(user)s with the API key %(key)s.",
                user=user.name,
                key=key_name,
            ),
            subtype_xmlid="mail.mt_note",
        )
        return order.with_env(self.env)

    @api.model
    def _esd_api_search(self, after_id, limit, reference=None):
        """The caller's license orders after ``after_id`` in id order (record rules decide
        which), at most ``limit``; and whether more follow."""
        api_grant(self.env)
        domain = [("id", ">", after_id)]
        if reference:
            domain.append(("client_order_ref", "=", reference))
        # Which orders the caller sees is decided with its own rights; whether they sell
        # licenses is looked up within those, as sudo (it looks into products).
        visible = self._search(domain)
        found = self.sudo().search(
            [("id", "in", visible), ("order_line.is_esd", "=", True)], order="id", limit=limit + 1
        )
        return found[:limit].with_env(self.env), len(found) > limit

    def _esd_api_values(self):
        self.ensure_one()
        order = self.sudo()
        customer = order.esd_end_customer_id.commercial_partner_id
        invoices = order.invoice_ids.filtered(lambda m: m.state == "posted")
        return {
            "id": order.id,
            "name": order.name,
            "reference": order.client_order_ref or None,
            "state": order.state,
            "date_order": iso(order.date_order),
            "customer": {"id": customer.id, "name": customer.name} if customer else "self",
            "amount_untaxed": order.amount_untaxed,
            "amount_tax": order.amount_tax,
            "amount_total": order.amount_total,
            "currency": order.currency_id.name,
            "licenses": [asset._esd_api_values() for asset in self.esd_asset_ids.sorted("id")],
            "invoices": [
                {
                    "id": move.id,
                    "name": move.name,
                    "type": "credit_note" if move.move_type == "out_refund" else "invoice",
                    "amount_total": move.amount_total,
                    "currency": move.currency_id.name,
                    "payment_state": move.payment_state,
                }
                for move in invoices.sorted("id")
            ],
        }
