from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        """An invoice or credit note of a license order, posted: an ``order.invoiced`` webhook
        message for its reseller, written in the same transaction."""
        posted = super()._post(soft)
        for move in posted.filtered(lambda m: m.move_type in ("out_invoice", "out_refund")):
            lines = move.invoice_line_ids.sale_line_ids.filtered("is_esd")
            for order in lines.order_id:
                licenses = lines.filtered(lambda line, o=order: line.order_id == o).esd_asset_ids
                move._esd_emit_invoiced(order, licenses)
        return posted

    def _esd_emit_invoiced(self, order, licenses):
        self.ensure_one()
        move = self.sudo()

        def data():
            return {
                "order": {
                    "id": order.id,
                    "name": order.name,
                    "reference": order.client_order_ref or None,
                },
                "invoice": {
                    "id": move.id,
                    "name": move.name,
                    "type": "credit_note" if move.move_type == "out_refund" else "invoice",
                    "amount_total": move.amount_total,
                    "currency": move.currency_id.name,
                },
                "licenses": sorted(licenses.ids),
            }

        self.env["esd.webhook.delivery"]._esd_emit(
            "order.invoiced",
            [(order.company_id, order.partner_id.commercial_partner_id, order.name, data)],
        )
