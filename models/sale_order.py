from odoo import _, api, fields, models
from odoo.exceptions import UserError


class SaleOrder(models.Model):
    _inherit = "sale.order"

    esd_end_customer_id = fields.Many2one(
        "res.partner",
        "End Customer",
        index=True,
        tracking=True,
        help="A reseller ordering on behalf of an end customer: the licenses belong to the end "
        "customer, the reseller (the order's customer) is billed.",
    )
    esd_asset_ids = fields.One2many("esd.asset", "sale_order_id", string="Licenses")
    esd_asset_count = fields.Integer(compute="_compute_esd_asset_count")
    has_esd_lines = fields.Boolean(compute="_compute_esd_asset_count")

    @api.depends("esd_asset_ids", "order_line.product_id")
    def _compute_esd_asset_count(self):
        for order in self:
            order.esd_asset_count = len(order.esd_asset_ids)
            order.has_esd_lines = any(order.order_line.mapped("is_esd"))

    @api.constrains("esd_end_customer_id", "partner_id")
    def _check_end_customer(self):
        for order in self:
            end = order.esd_end_customer_id.commercial_partner_id
            if end and end == order.partner_id.commercial_partner_id:
                raise UserError(
                    _(
                        "The end customer of %s is the customer itself: leave End Customer empty.",
                        order.name,
                    )
                )

    # ------------------------------------------------------------------ confirmation
    def action_confirm(self):
        esd_orders = self.filtered(lambda o: any(o.order_line.mapped("is_esd")))
        for order in esd_orders:
            try:
                order.order_line._esd_split()
            except ValueError as exc:
                raise UserError(_("%(order)s: %(error)s", order=order.name, error=exc)) from None
        esd_orders._esd_check_sellable()
        esd_orders._esd_sync_partners()
        result = super().action_confirm()
        assets = esd_orders._esd_create_assets()
        if assets:
            assets._esd_trigger_provisioning()
        return result

    def _esd_parties(self):
        """(customer, billed partner) of the licenses: commercial entities, as CIS knows them."""
        self.ensure_one()
        billed = self.partner_id.commercial_partner_id
        customer = self.esd_end_customer_id.commercial_partner_id or billed
        return customer, billed

    def _esd_check_sellable(self):
        for line in self.order_line.filtered("is_esd"):
            template = line.product_id.product_tmpl_id
            if template.esd_catalog_status == "discontinued" or not template.esd_instance_id:
                raise UserError(
                    _(
                        "%(product)s on %(order)s can no longer be ordered from Microsoft "
                        "(discontinued): remove the line.",
                        product=line.product_id.display_name,
                        order=line.order_id.name,
                    )
                )
            if template.esd_instance_id.state != "connected":
                raise UserError(
                    _(
                        "The ESD instance %(instance)s of %(product)s is not connected: test its "
                        "connection first.",
                        instance=template.esd_instance_id.name,
                        product=line.product_id.display_name,
                    )
                )

    def _esd_sync_partners(self):
        """Every partner a license needs is synchronized first, or confirmation stops."""
        for order in self:
            customer, billed = order._esd_parties()
            instances = order.order_line.filtered(
                "is_esd"
            ).product_id.product_tmpl_id.esd_instance_id
            parties = [(customer, "user")]
            if billed != customer:
                if billed.esd_role and billed.esd_role != "reseller":
                    raise UserError(
                        _(
                            "%s orders for an end customer but its ESD role is not Reseller: "
                            "change it in its Sync Options.",
                            billed.display_name,
                        )
                    )
                parties.append((billed, "reseller"))
            for partner, role in parties:
                for instance in instances:
                    if partner._esd_account(instance).sync_status != "synchronized":
                        partner._esd_sync(instance, partner.esd_role or role)

    def _esd_create_assets(self):
        """One license per ESD line; only the missing ones, so confirming again is safe."""
        vals_list = []
        for order in self:
            customer, billed = order._esd_parties()
            for line in order.order_line.filtered("is_esd"):
                missing = int(line.product_uom_qty) - len(line.esd_asset_ids)
                vals_list += [
                    {
                        "customer_id": customer.id,
                        "billing_partner_id": billed.id,
                        "sale_order_id": order.id,
                        "sale_line_id": line.id,
                        "product_id": line.product_id.id,
                        "instance_id": line.product_id.product_tmpl_id.esd_instance_id.id,
                        "price_unit": line.price_unit * (1 - (line.discount or 0.0) / 100.0),
                        "currency_id": order.currency_id.id,
                        "purchase_date": fields.Date.context_today(order),
                    }
                ] * max(0, missing)
        # The order's chatter records the confirmation; no "created" note on each license.
        Asset = self.env["esd.asset"].sudo().with_context(mail_create_nolog=True)
        return Asset.create(vals_list)

    # ------------------------------------------------------------------ invoicing
    def _get_invoiceable_lines(self, final=False):
        """A license is invoiced once it is delivered, never before."""
        lines = super()._get_invoiceable_lines(final)
        return lines.filtered(
            lambda line: (
                not line.is_esd
                or line.display_type
                or (
                    line.esd_asset_ids
                    and all(a.sync_status == "synchronized" for a in line.esd_asset_ids)
                )
            )
        )

    def _esd_invoice_delivered(self):
        """One posted invoice for the licenses delivered since the last one.

        Waits while some license of the order is still being provisioned, so a normal order gets
        exactly one invoice; a license that failed and is delivered later gets a follow-up one.
        """
        for order in self:
            assets = order.esd_asset_ids
            if any(a.sync_status == "unsynchronised" for a in assets):
                continue
            to_invoice = assets.filtered(
                lambda a: a.sync_status == "synchronized" and not a.invoice_line_id
            )
            if not to_invoice:
                continue
            # Marked delivered here, under the order's lock: during provisioning, workers
            # writing lines of the same order would collide on its stored totals.
            to_invoice.sale_line_id.sudo().write({"qty_delivered": 1})
            moves = order.sudo()._create_invoices()
            moves.action_post()
            for asset in to_invoice:
                line = moves.invoice_line_ids.filtered(
                    lambda line, a=asset: a.sale_line_id in line.sale_line_ids
                )
                asset.sudo().invoice_line_id = line[:1]
            order.message_post(
                body=_(
                    "Invoiced %(count)s delivered licenses: %(invoices)s",
                    count=len(to_invoice),
                    invoices=", ".join(moves.mapped("name")),
                )
            )

    def action_view_esd_assets(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_asset")
        action["domain"] = [("sale_order_id", "=", self.id)]
        action["context"] = {"default_sale_order_id": self.id}
        return action
