from odoo import fields, models


class ResPartner(models.Model):
    """A reseller hears of Microsoft's price changes: by email (unless it opted out) and through
    the extension hook below."""

    _inherit = "res.partner"

    esd_price_digest_optout = fields.Boolean(
        "No Price-Change Emails",
        tracking=True,
        help="This reseller does not receive the email listing its new prices after Microsoft "
        "changed the price of products it bought.",
    )

    def _esd_price_changes_announced(self, changes):
        """Called once per reseller (``self``, a commercial entity) and catalog sync whose
        price changes concern products it bought in the last 12 months, whether or not it
        opted out of the email, in the transaction that records its digest.

        ``changes`` is a list of dicts, one per product whose price for this reseller changed
        (its own pricelist): ``product_tmpl_id``, ``esd_product_id`` (the CIS product id),
        ``name``, ``instance_id``, ``pricelist_id``, ``currency`` (ISO code), ``old_price``,
        ``new_price`` and ``changed_at`` (the sync's time, UTC, ``YYYY-MM-DD HH:MM:SS``).
        Ids, names and prices only: never a cost, never a key.

        Queues the reseller API's ``price.changed`` webhook message for the reseller's endpoints
        (none when it registered none).
        """
        templates = self.env["product.template"].browse(
            [change["product_tmpl_id"] for change in changes]
        )
        by_id = {template.id: template for template in templates}
        self._esd_webhook_price_changed(
            [
                {
                    "product_id": by_id[change["product_tmpl_id"]].product_variant_id.id,
                    "sku": by_id[change["product_tmpl_id"]].esd_sku or None,
                    "name": change["name"],
                    "old_price": change["old_price"],
                    "price": change["new_price"],
                    "currency": change["currency"],
                }
                for change in changes
            ]
        )
