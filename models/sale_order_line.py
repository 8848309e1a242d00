from odoo import Command, api, fields, models
from odoo.tools import format_amount

from ..microsoft_esd import prices
from ..microsoft_esd.provisioning import license_count


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    is_esd = fields.Boolean(related="product_id.product_tmpl_id.is_esd")
    esd_asset_ids = fields.One2many("esd.asset", "sale_line_id", string="Licenses")
    qty_delivered_method = fields.Selection(selection_add=[("esd", "Microsoft ESD licenses")])
    esd_cost_unit = fields.Monetary(
        "License Cost",
        compute="_compute_esd_cost",
        help="What Microsoft charges for one license: the product's cost (Microsoft's price), in "
        "the order's currency at the order's date.",
    )
    esd_below_cost = fields.Boolean(
        "Below Cost",
        compute="_compute_esd_cost",
        help="One license sells for less than it costs (taxes excluded, after discount).",
    )

    @api.depends("is_esd")
    def _compute_qty_delivered_method(self):
        res = super()._compute_qty_delivered_method()
        for line in self.filtered("is_esd"):
            line.qty_delivered_method = "esd"
        return res

    @api.depends("esd_asset_ids.sync_status", "esd_asset_ids.state")
    def _compute_qty_delivered(self):
        """A license line has delivered what its licenses delivered and Microsoft did not take
        back: 1 for a license delivered and not returned, 0 while pending or once returned."""
        esd_lines = self.filtered(lambda line: line.qty_delivered_method == "esd")
        res = super(SaleOrderLine, self - esd_lines)._compute_qty_delivered()
        for line in esd_lines:
            line.qty_delivered = len(
                line.esd_asset_ids.filtered(
                    lambda a: a.sync_status == "synchronized" and a.state == "active"
                )
            )
        return res

    @api.depends(
        "product_id",
        "price_reduce_taxexcl",
        "order_id.currency_id",
        "order_id.date_order",
        "order_id.company_id",
    )
    def _compute_esd_cost(self):
        for line in self:
            order = line.order_id
            if not line.is_esd or not line.product_id or not order.currency_id:
                line.esd_cost_unit, line.esd_below_cost = 0.0, False
                continue
            company = order.company_id or self.env.company
            cost = line.product_id.with_company(company).sudo().standard_price
            cost = company.currency_id._convert(
                cost, order.currency_id, company, order.date_order or fields.Date.today()
            )
            line.esd_cost_unit = cost
            line.esd_below_cost = bool(
                line.product_uom_qty
                and not line.display_type
                and prices.below_cost(
                    line.price_reduce_taxexcl, cost, order.currency_id.decimal_places
                )
            )

    @api.onchange("product_id", "price_unit", "discount", "product_uom_qty", "tax_id")
    def _onchange_esd_below_cost(self):
        """Warn the salesperson as soon as a license sells below cost (confirming stays
        possible, and the order's chatter records it)."""
        if self.esd_below_cost:
            return {
                "warning": {
                    "title": self.env._("Below cost"),
                    "message": self._esd_below_cost_text()
                    + " "
                    + self.env._(
                        "The order can still be confirmed; its chatter will record it. An ESD "
                        "manager may allow it beforehand (Allow Below Cost)."
                    ),
                }
            }
        return None

    def _esd_below_cost_text(self):
        """The sentence that names the product, its price and its cost."""
        self.ensure_one()
        currency = self.order_id.currency_id
        return self.env._(
            "%(product)s sells below cost: price %(price)s, cost %(cost)s.",
            product=self.product_id.display_name,
            price=currency and format_amount(self.env, self.price_reduce_taxexcl, currency),
            cost=currency and format_amount(self.env, self.esd_cost_unit, currency),
        )

    def _compute_amount(self):
        """An ESD line of N licenses costs what the N lines of one license it becomes cost (each
        rounded on its own, as on the invoice)."""
        per_license = self.filtered(lambda line: line.is_esd and line._esd_license_count() > 1)
        res = super(SaleOrderLine, self - per_license)._compute_amount()
        for line in per_license:
            base_line = line._prepare_base_line_for_taxes_computation(quantity=1.0)
            self.env["account.tax"]._add_tax_details_in_base_line(base_line, line.company_id)
            currency = line.currency_id or line.company_id.currency_id
            count = line._esd_license_count()
            details = base_line["tax_details"]
            line.price_subtotal = count * currency.round(details["total_excluded_currency"])
            line.price_total = count * currency.round(details["total_included_currency"])
            line.price_tax = line.price_total - line.price_subtotal
        return res

    def _esd_license_count(self):
        """How many licenses this line becomes (0 when its quantity is not a whole number of
        licenses: the split refuses it)."""
        self.ensure_one()
        try:
            return license_count(self.product_uom_qty)
        except ValueError:
            return 0

    def _esd_prepare_asset_values(self):
        """The values of one license of this line: its parties, product, instance, the price
        paid for it, taxes excluded (after discount, as the order computed it), and its cost
        then (Microsoft's price, the product's cost)."""
        self.ensure_one()
        order = self.order_id
        customer, billed = order._esd_parties()
        instance = self.product_id.product_tmpl_id.esd_instance_id
        recipients, addresses = instance._esd_license_recipients(customer)
        return {
            "customer_id": customer.id,
            "billing_partner_id": billed.id,
            "ordered_by_user_id": order._esd_buyer().id,
            "sale_order_id": order.id,
            "sale_line_id": self.id,
            "product_id": self.product_id.id,
            "instance_id": self.product_id.product_tmpl_id.esd_instance_id.id,
            "price_unit": self.price_reduce_taxexcl,
            "cost_unit": self.esd_cost_unit,
            "currency_id": order.currency_id.id,
            "purchase_date": fields.Date.context_today(order),
            "welcome_partner_ids": [Command.set(recipients.ids)],
            "mail_to": addresses,
        }

    def _esd_split(self):
        """Make every ESD line of quantity N into N lines of quantity 1 (prices, taxes kept).

        The N - 1 new lines of an order are made with one batched create.
        """
        vals_list = []
        for line in self.filtered("is_esd"):
            count = license_count(line.product_uom_qty)
            if count == 1:
                continue
            # The price, discount and taxes agreed for N stay (a pricelist may price by quantity).
            line.write(
                {"product_uom_qty": 1, "price_unit": line.price_unit, "discount": line.discount}
            )
            copy = line.copy_data(
                {"order_id": line.order_id.id, "product_uom_qty": 1, "sequence": line.sequence}
            )[0]
            vals_list += [dict(copy) for _index in range(count - 1)]
        if vals_list:
            self.create(vals_list)
