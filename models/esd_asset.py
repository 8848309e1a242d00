import logging
import uuid

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import config

from ..microsoft_esd import licenses

_logger = logging.getLogger(__name__)

SYNC_STATUS = [
    ("unsynchronised", "Unsynchronised"),
    ("synchronized", "Synchronized"),
    ("failed", "Failed"),
]
TOKEN_STATUS = [
    ("activated", "Activated"),
    ("redeemed", "Redeemed"),
    ("return_accepted", "Return Accepted"),
]


class EsdAsset(models.Model):
    """One Microsoft license sold: its token, its status at Microsoft, its sale and invoice."""

    _name = "esd.asset"
    _description = "Microsoft ESD License"
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin"]
    _order = "id desc"

    name = fields.Char(required=True, readonly=True, copy=False, default=lambda self: _("New"))
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(related="sale_order_id.company_id", store=True, index=True)
    customer_id = fields.Many2one(
        "res.partner", "Customer", required=True, readonly=True, index=True, tracking=True
    )
    billing_partner_id = fields.Many2one(
        "res.partner", "Billed To", required=True, readonly=True, index=True
    )
    sale_order_id = fields.Many2one(
        "sale.order", "Order", required=True, readonly=True, index=True, ondelete="restrict"
    )
    sale_line_id = fields.Many2one(
        "sale.order.line", "Order Line", readonly=True, index=True, ondelete="set null"
    )
    user_id = fields.Many2one(related="sale_order_id.user_id", string="Salesperson")
    product_id = fields.Many2one("product.product", "Product", required=True, readonly=True)
    instance_id = fields.Many2one("esd.instance", "ESD Instance", required=True, readonly=True)
    price_unit = fields.Monetary("Price", readonly=True)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    purchase_date = fields.Date(readonly=True, default=fields.Date.context_today)
    state = fields.Selection(
        [("active", "Active"), ("cancelled", "Cancelled")],
        default="active",
        required=True,
        readonly=True,
        tracking=True,
    )
    sync_status = fields.Selection(
        SYNC_STATUS,
        "Provisioning",
        default="unsynchronised",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    sync_error = fields.Text("Provisioning Error", readonly=True)
    sync_attempts = fields.Integer(readonly=True, default=0)
    next_attempt_at = fields.Datetime(readonly=True)
    token = fields.Char(
        "License Key",
        compute="_compute_token",
        inverse="_inverse_token",
        search="_search_token",
        readonly=True,
        help="Shown in full to ESD users and to the license's customer and reseller; masked "
        "(last 5 characters) for everyone else. Search with the whole key.",
    )
    token_stored = fields.Char(copy=False, groups="base.group_system")
    token_hash = fields.Char(copy=False, index=True, groups="base.group_system")
    token_status = fields.Selection(TOKEN_STATUS, readonly=True, tracking=True)
    return_status = fields.Selection(
        [("none", "None"), ("successful", "Successful")],
        readonly=True,
        default="none",
        tracking=True,
    )
    activation_link = fields.Char(readonly=True, copy=False)
    activation_date = fields.Datetime(readonly=True)
    esd_license_id = fields.Char("CIS License ID", readonly=True, copy=False, index=True)
    esd_order_id = fields.Char("CIS Order ID", readonly=True, copy=False)
    request_id = fields.Char(
        "Idempotency Key",
        required=True,
        readonly=True,
        copy=False,
        default=lambda self: str(uuid.uuid4()),
        help="Sent as MS-RequestId: ordering again with it returns the same license, never a "
        "second one.",
    )
    invoice_line_id = fields.Many2one("account.move.line", readonly=True, copy=False)
    credit_note_line_id = fields.Many2one("account.move.line", readonly=True, copy=False)
    credit_note_id = fields.Many2one(related="credit_note_line_id.move_id", string="Credit Note")
    cancel_request_state = fields.Selection(
        [("none", "None"), ("pending", "Pending"), ("rejected", "Rejected")],
        "Cancellation Request",
        default="none",
        readonly=True,
        copy=False,
        tracking=True,
    )
    cancel_request_comment = fields.Text(readonly=True, copy=False)
    cancel_requested_by = fields.Many2one("res.partner", readonly=True, copy=False)
    cancel_requested_on = fields.Datetime(readonly=True, copy=False)
    welcome_pending = fields.Boolean(
        readonly=True, copy=False, index=True, help="The welcome email waits for its cron."
    )
    invoice_id = fields.Many2one(related="invoice_line_id.move_id", string="Invoice")
    invoice_amount = fields.Monetary(
        related="invoice_line_id.price_total", string="Invoice Amount", currency_field="currency_id"
    )
    quantity = fields.Float(related="sale_line_id.product_uom_qty", string="Quantity")
    uom_id = fields.Many2one(related="product_id.uom_id", string="Unit")
    welcome_partner_ids = fields.Many2many(
        "res.partner",
        compute="_compute_welcome_partner_ids",
        string="License Email Recipients",
        help="The customer plus the instance's extra recipients.",
    )

    _sql_constraints = [
        ("request_id_unique", "UNIQUE(request_id)", "The idempotency key of a license is unique."),
        ("license_unique", "UNIQUE(esd_license_id)", "A CIS license is recorded once."),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        sequence = self.env["ir.sequence"]
        for vals in vals_list:
            if vals.get("name", _("New")) == _("New"):
                vals["name"] = sequence.next_by_code("esd.asset") or _("New")
        return super().create(vals_list)

    def write(self, vals):
        if "request_id" in vals and any(asset.request_id != vals["request_id"] for asset in self):
            raise UserError(_("The idempotency key of a license never changes."))
        return super().write(vals)

    def unlink(self):
        delivered = self.filtered(lambda a: a.sync_status == "synchronized")
        if delivered:
            raise UserError(
                _(
                    "%s: a delivered license is proof of a sale and cannot be deleted. Archive "
                    "it instead.",
                    ", ".join(delivered.mapped("name")),
                )
            )
        if not self.env.user.has_group("microsoft_esd.group_esd_manager"):
            raise UserError(_("Only ESD managers can delete licenses that were never delivered."))
        return super().unlink()

    # ------------------------------------------------------------------ the key
    @api.model
    def _esd_token_key(self):
        """The encryption key, from Odoo's configuration file (never from the database)."""
        return config.get("esd_token_key") or None

    @api.model
    def _esd_token_hash_key(self):
        return self._esd_token_key() or self.env["ir.config_parameter"].sudo().get_param(
            "database.secret"
        )

    def _esd_token_visible(self):
        """ESD users, the license's customer and its reseller see the whole key."""
        self.ensure_one()
        if self.env.su or self.env.user.has_group("microsoft_esd.group_esd_user"):
            return True
        commercial = self.env.user.partner_id.commercial_partner_id
        return commercial in (self.customer_id | self.billing_partner_id)

    @api.depends_context("uid")
    def _compute_token(self):
        key = self._esd_token_key()
        for asset in self:
            try:
                token = licenses.unseal(asset.sudo().token_stored, key)
            except ValueError as exc:
                _logger.warning("license %s: %s", asset.id, exc)
                token = False
            asset.token = token if not token or asset._esd_token_visible() else licenses.mask(token)

    def _inverse_token(self):
        key, hash_key = self._esd_token_key(), self._esd_token_hash_key()
        for asset in self:
            asset.sudo().write(
                {
                    "token_stored": licenses.seal(asset.token, key) or False,
                    "token_hash": asset.token and licenses.keyed_hash(asset.token, hash_key),
                }
            )

    def _search_token(self, operator, value):
        if operator not in ("=", "ilike", "like", "=ilike", "=like") or not value:
            raise UserError(_("Search a license by its whole key."))
        digest = licenses.keyed_hash(value, self._esd_token_hash_key())
        ids = self.sudo()._search([("token_hash", "=", digest)])
        return [("id", "in", ids)]

    def _compute_access_url(self):
        super()._compute_access_url()
        for asset in self:
            asset.access_url = f"/my/esd/{asset.id}"
