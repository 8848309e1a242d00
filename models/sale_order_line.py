from odoo import Command, api, fields, models

from ..microsoft_esd.provisioning import license_count


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    is_esd = fields.Boolean(related="product_id.product_tmpl_id.is_esd")
    esd_asset_ids = fields.One2many("esd.asset", "sale_line_id", string="Licenses")
    qty_delivered_method = fields.Selection(selection_add=[("esd", "Microsoft ESD licenses")])

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
        """The values of one license of this line: its parties, product, instance and the price
        paid for it, taxes excluded (after discount, as the order computed it)."""
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
