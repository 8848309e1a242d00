import logging

from markupsafe import Markup

from odoo import Command, api, fields, models
from odoo.tools import format_amount

_logger = logging.getLogger(__name__)

# The template placeholders an ESD manager (not a template editor) may use.
DIGEST_MAIL_EXPRESSIONS = (
    "object.partner_id.name",
    "object.partner_id.lang",
    "object.company_id.name",
    "object.instance_id.name",
    "object.esd_price_table_html",
    "object.esd_mail_from",
)


class EsdPriceDigest(models.Model):
    """One reseller's email after one catalog sync: its own new prices of the products it
    bought in the last 12 months whose Microsoft price changed, worded by the template of the
    instance's company (else the shared one)."""

    _name = "esd.price.digest"
    _description = "Microsoft ESD Price-Change Email"
    _order = "date desc, id desc"
    _rec_name = "partner_id"

    partner_id = fields.Many2one(
        "res.partner", "Reseller", required=True, readonly=True, index=True, ondelete="cascade"
    )
    instance_id = fields.Many2one(
        "esd.instance", "ESD Instance", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(
        related="instance_id.company_id", store=True, index=True, string="Company"
    )
    pricelist_id = fields.Many2one("product.pricelist", readonly=True)
    date = fields.Datetime("Synchronised On", required=True, readonly=True)
    correlation_id = fields.Char("Sync Correlation ID", readonly=True, index=True)
    line_ids = fields.Many2many(
        "esd.price.change.line",
        "esd_price_digest_line_rel",
        string="New Prices",
        readonly=True,
    )
    line_count = fields.Integer("Products", compute="_compute_line_count")
    state = fields.Selection(
        [
            ("to_send", "To send"),
            ("sent", "Sent"),
            ("opted_out", "Not sent: opted out"),
            ("no_email", "Not sent: no email address"),
            ("failed", "Not sent: error"),
        ],
        required=True,
        default="to_send",
        readonly=True,
        index=True,
    )
    sent_at = fields.Datetime("Queued On", readonly=True)
    esd_price_table_html = fields.Html(
        "Price Table",
        compute="_compute_esd_price_table_html",
        sanitize=False,
        help="The products and their old and new prices, as the email shows them.",
    )
    esd_mail_from = fields.Char("Sender", compute="_compute_esd_mail_from")

    @api.depends("line_ids")
    def _compute_line_count(self):
        for digest in self:
            digest.line_count = len(digest.line_ids)

    @api.depends("line_ids.price_old", "line_ids.price_new")
    @api.depends_context("lang")
    def _compute_esd_price_table_html(self):
        cell = 'style="padding: 4px 12px 4px 0; border-bottom: 1px solid #ddd;"'
        for digest in self:
            header = Markup("").join(
                Markup(f"<th {cell} align='left'>%s</th>") % title
                for title in (
                    self.env._("Product"),
                    self.env._("Old price"),
                    self.env._("New price"),
                    self.env._("Change"),
                )
            )
            rows = []
            for line in digest.line_ids.sorted(lambda ln: ln.product_tmpl_id.name or ""):
                old, new = line.price_old, line.price_new
                change = f"{100.0 * (new - old) / old:+.1f} %" if old else ""
                rows.append(
                    Markup("<tr>%s</tr>")
                    % Markup("").join(
                        Markup(f"<td {cell}>%s</td>") % value
                        for value in (
                            line.product_tmpl_id.with_context(lang=self.env.lang).name,
                            format_amount(self.env, old, line.currency_id),
                            format_amount(self.env, new, line.currency_id),
                            change,
                        )
                    )
                )
            digest.esd_price_table_html = Markup(
                '<table style="border-collapse: collapse; margin: 16px 0;"><tr>%s</tr>%s</table>'
            ) % (header, Markup("").join(rows))

    @api.depends("company_id")
    def _compute_esd_mail_from(self):
        for digest in self:
            digest.esd_mail_from = (
                digest.company_id.email_formatted or self.env.user.email_formatted
            )

    @api.model
    def mail_allowed_qweb_expressions(self):
        """The placeholders ESD managers, who are not template editors, may use."""
        return tuple(super().mail_allowed_qweb_expressions()) + DIGEST_MAIL_EXPRESSIONS

    # ------------------------------------------------------------------ sending
    @api.model
    def _esd_template(self, company):
        """The price-change email template of ``company``, else the shared one."""
        shared = "microsoft_esd.mail_template_esd_price_digest"
        return (
            self.env["mail.template"]._esd_company_copy(shared, company)
            or self.env.ref(shared).sudo()
        )

    @api.model
    def _esd_claim(self, limit):
        self.flush_model(["state"])
        self.env.cr.execute(
            "SELECT id FROM esd_price_digest WHERE state = 'to_send' ORDER BY id "
            "LIMIT %s FOR UPDATE SKIP LOCKED",
            [limit],
        )
        return self.browse([row[0] for row in self.env.cr.fetchall()])

    @api.model
    def _esd_send_batch(self, limit):
        """Queue the emails of up to ``limit`` digests (Odoo's mail queue sends them): each to
        its reseller only, whatever the template says. Returns the digests."""
        digests = self.sudo()._esd_claim(limit)
        for digest in digests:
            try:
                with self.env.cr.savepoint():
                    digest._esd_send(self._esd_template(digest.company_id))
            except Exception:  # one reseller's email never blocks the others
                _logger.exception("price-change email %s could not be queued", digest.id)
                digest.state = "failed"
        return digests

    def _esd_send(self, template):
        self.ensure_one()
        template.send_mail(
            self.id,
            email_values={
                "recipient_ids": [Command.set(self.partner_id.ids)],
                "email_to": False,
                "email_cc": False,
                "partner_ids": [Command.clear()],
            },
        )
        self.write({"state": "sent", "sent_at": fields.Datetime.now()})
        self.partner_id._message_log(
            body=self.env._(
                "Price-change email queued (catalog sync of %(instance)s): new prices of "
                "%(products)s.",
                instance=self.instance_id.name,
                products=", ".join(self.line_ids.product_tmpl_id.mapped("display_name")),
            )
        )
