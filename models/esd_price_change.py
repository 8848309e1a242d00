import logging

from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import format_amount

from ..microsoft_esd import prices
from . import esd_jobs

_logger = logging.getLogger(__name__)

# How many digests one run of the job emails before it commits.
DIGEST_BATCH = 50


class EsdPriceChange(models.Model):
    """Microsoft changed the price of a product: its old and new cost, and the old and new
    price on each reseller tier, as one catalog sync found them."""

    _name = "esd.price.change"
    _description = "Microsoft ESD Price Change"
    _order = "date desc, id desc"
    _rec_name = "product_tmpl_id"

    product_tmpl_id = fields.Many2one(
        "product.template", "Product", required=True, readonly=True, index=True, ondelete="cascade"
    )
    instance_id = fields.Many2one(
        "esd.instance", "ESD Instance", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(
        related="instance_id.company_id", store=True, index=True, string="Company"
    )
    currency_id = fields.Many2one(related="company_id.currency_id", string="Currency")
    date = fields.Datetime("Synchronised On", required=True, readonly=True, index=True)
    correlation_id = fields.Char("Sync Correlation ID", readonly=True, index=True)
    cis_price_old = fields.Float("Microsoft's Old Price", digits="Product Price", readonly=True)
    cis_currency_old = fields.Char("Old Currency", readonly=True)
    cis_price_new = fields.Float("Microsoft's New Price", digits="Product Price", readonly=True)
    cis_currency = fields.Char("Microsoft's Currency", readonly=True)
    change_percent = fields.Float(
        "Change (%)", compute="_compute_change_percent", store=True, digits=(16, 1)
    )
    cost_old = fields.Monetary("Old Cost", readonly=True)
    cost_new = fields.Monetary("New Cost", readonly=True)
    list_price_old = fields.Monetary("Old Sales Price", readonly=True)
    list_price_new = fields.Monetary("New Sales Price", readonly=True)
    line_ids = fields.One2many(
        "esd.price.change.line", "change_id", string="Prices per Tier", readonly=True
    )
    announced = fields.Boolean(
        readonly=True,
        index=True,
        help="The resellers who bought this product in the last 12 months were told (their "
        "digest email is queued, unless they opted out).",
    )

    @api.depends("cis_price_old", "cis_price_new", "cis_currency", "cis_currency_old")
    def _compute_change_percent(self):
        for change in self:
            same = change.cis_currency == change.cis_currency_old and change.cis_price_old
            change.change_percent = (
                100.0 * (change.cis_price_new - change.cis_price_old) / change.cis_price_old
                if same
                else 0.0
            )

    def _esd_note(self):
        """The note a product's chatter gets: Microsoft's price, the cost and each sales price,
        old and new."""
        self.ensure_one()
        currency = self.currency_id

        def money(amount, currency):
            return format_amount(self.env, amount or 0.0, currency)

        rows = [
            (
                self.env._("Microsoft's price"),
                f"{self.cis_price_old:.2f} {self.cis_currency_old or ''}".strip(),
                f"{self.cis_price_new:.2f} {self.cis_currency or ''}".strip(),
            ),
            (self.env._("Cost"), money(self.cost_old, currency), money(self.cost_new, currency)),
            (
                self.env._("Sales Price (fixed by hand)")
                if self.product_tmpl_id.esd_price_fixed
                else self.env._("Sales Price"),
                money(self.list_price_old, currency),
                money(self.list_price_new, currency),
            ),
        ]
        rows += [
            (
                line.pricelist_id.display_name,
                money(line.price_old, line.currency_id),
                money(line.price_new, line.currency_id),
            )
            for line in self.line_ids
            if line.pricelist_id
        ]
        body = Markup("<p>%s</p><ul>%s</ul>") % (
            self.env._("Microsoft changed its price (catalog sync %s):", self.correlation_id),
            Markup("").join(Markup("<li>%s: %s → %s</li>") % row for row in rows),
        )
        if prices.below_cost(self.list_price_new, self.cost_new, currency.decimal_places):
            body += Markup("<p><strong>%s</strong></p>") % self.env._(
                "The Sales Price is now below cost."
            )
        return body

    def _esd_open(self, title):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "microsoft_esd.action_esd_price_change"
        )
        action.update(name=title, domain=[("id", "in", self.ids)])
        return action

    # ------------------------------------------------------------------ the digest job
    @api.model
    def _cron_announce(self):
        """Announce one sync's price changes to the resellers who bought the products, then
        email one batch of digests; report the progress and commit."""
        done = len(self._esd_announce_batch())
        esd_jobs.commit(self.env)
        done += len(self.env["esd.price.digest"]._esd_send_batch(DIGEST_BATCH))
        remaining = self.search_count([("announced", "=", False)]) + self.env[
            "esd.price.digest"
        ].search_count([("state", "=", "to_send")])
        esd_jobs.finish(self.env, done, remaining)
        return done

    @api.model
    def _esd_announce_pending(self):
        """Announce every price change and send every digest (for Odoo shells and tests; the
        cron works one sync and one batch per call and commits)."""
        while self._esd_announce_batch():
            pass
        while self.env["esd.price.digest"]._esd_send_batch(DIGEST_BATCH):
            pass

    @api.model
    def _esd_claim(self):
        """The unannounced price changes of one sync, locked (another worker skips them)."""
        self.flush_model(["announced", "instance_id", "correlation_id"])
        self.env.cr.execute(
            "SELECT id FROM esd_price_change WHERE NOT COALESCE(announced, false) "
            "ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        row = self.env.cr.fetchone()
        if not row:
            return self.browse()
        first = self.browse(row[0])
        self.env.cr.execute(
            "SELECT id FROM esd_price_change WHERE NOT COALESCE(announced, false) "
            "AND instance_id = %s AND correlation_id IS NOT DISTINCT FROM %s "
            "ORDER BY id FOR UPDATE SKIP LOCKED",
            [first.instance_id.id, first.correlation_id],
        )
        return self.browse([r[0] for r in self.env.cr.fetchall()])

    @api.model
    def _esd_announce_batch(self):
        """One sync's price changes: one digest per reseller that bought some of the products
        in the last 12 months, listing its own old and new prices of those (its pricelist);
        the reseller's extension hook is called with the same changes. Returns the changes."""
        changes = self.sudo()._esd_claim()
        if not changes:
            return changes
        instance = changes.instance_id
        since = fields.Date.to_date(changes[0].date) - relativedelta(months=prices.DIGEST_MONTHS)
        rows = (
            self.env["esd.asset"]
            .sudo()
            .with_context(active_test=False)
            ._read_group(
                [
                    ("instance_id", "=", instance.id),
                    ("product_id.product_tmpl_id", "in", changes.product_tmpl_id.ids),
                    ("purchase_date", ">=", since),
                    ("billing_partner_id.esd_role", "=", "reseller"),
                ],
                ["billing_partner_id", "product_id"],
            )
        )
        recipients = prices.digest_recipients(
            (
                (partner.commercial_partner_id.id, product.product_tmpl_id.id)
                for partner, product in rows
            ),
            changes.product_tmpl_id.ids,
        )
        Partner = self.env["res.partner"].sudo().with_company(instance.company_id)
        Pricelist = self.env["product.pricelist"].sudo().with_company(instance.company_id)
        pricelists = Pricelist._get_partner_pricelist_multi(list(recipients))
        Digest = self.env["esd.price.digest"].sudo()
        for partner_id, template_ids in sorted(recipients.items()):
            reseller = Partner.browse(partner_id)
            pricelist = pricelists.get(partner_id) or self.env["product.pricelist"]
            lines = self.env["esd.price.change.line"].sudo()
            for line in changes.line_ids:
                if (
                    line.product_tmpl_id.id in template_ids
                    and line.pricelist_id == pricelist
                    and line.currency_id.compare_amounts(line.price_old, line.price_new) != 0
                ):
                    lines |= line
            if not lines:
                continue
            state = "to_send"
            if reseller.esd_price_digest_optout:
                state = "opted_out"
            elif not reseller.email:
                state = "no_email"
            Digest.create(
                {
                    "partner_id": reseller.id,
                    "instance_id": instance.id,
                    "pricelist_id": pricelist.id,
                    "date": changes[0].date,
                    "correlation_id": changes[0].correlation_id,
                    "line_ids": [fields.Command.set(lines.ids)],
                    "state": state,
                }
            )
            reseller._esd_price_changes_announced(lines._esd_announcement())
        changes.write({"announced": True})
        return changes
