"""18.0.1.2.0: licenses invoice through their order line's delivered quantity; returns are tracked.

- ESD products invoice on delivery, and their order lines get the 'esd' delivered quantity
  method (1 per license delivered and not returned).
- A license's invoice and credit note lines are computed from its order line.
- Licenses returned before this version: credited ones are done, the others wait for a decision
  in Reconciliation (returned at Microsoft, not credited).
"""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    templates = (
        env["product.template"].with_context(active_test=False).search([("is_esd", "=", True)])
    )
    templates.write({"invoice_policy": "delivery"})
    lines = env["sale.order.line"].search([("product_id.product_tmpl_id", "in", templates.ids)])
    Line = env["sale.order.line"]
    for name in ("qty_delivered_method", "qty_delivered"):
        env.add_to_compute(Line._fields[name], lines)
    assets = env["esd.asset"].with_context(active_test=False).search([])
    for name in ("invoice_line_id", "credit_note_line_id"):
        env.add_to_compute(assets._fields[name], assets)
    env.flush_all()
    returned = assets.filtered(
        lambda a: a.state == "cancelled" and a.token_status == "return_accepted"
    )
    credited = returned.filtered(lambda a: a.credit_note_line_id or not a.invoice_line_id)
    credited.write({"return_state": "done"})
    (returned - credited).write({"return_state": "external"})
