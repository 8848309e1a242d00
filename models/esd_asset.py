import functools
import logging
import uuid

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import config

from ..microsoft_esd import licenses, lifecycle
from ..microsoft_esd.vault import Vault, WeakSecretError
from .const import LICENSE_SYNC_STATUSES, TOKEN_STATUSES
from .esd_access import check_caller

_logger = logging.getLogger(__name__)

# Readable by internal users only: the portal reads a license through its controller.
INTERNAL = "base.group_user"


@functools.lru_cache(maxsize=8)
def _vault(secret_option, fallback_secret):
    return Vault.from_config(secret_option, fallback_secret)


class EsdAsset(models.Model):
    """One Microsoft license sold: its key, its sale, who may see the key and act on it.

    The key and the activation link are stored sealed in fields no user can read over RPC, an
    administrator included; :attr:`token` shows them in full to the license's owners only (its
    online buyer and the key holders of its customer or billed company, portal users all) and
    masked to everyone else, ESD users and administrators included, who use "Reveal key"
    (recorded in the chatter). Provisioning, status and returns live in
    ``esd_asset_provisioning.py`` and ``esd_asset_lifecycle.py``.
    """

    _name = "esd.asset"
    _description = "Microsoft ESD License"
    _inherit = ["mail.thread", "mail.activity.mixin", "portal.mixin"]
    _order = "id desc"

    name = fields.Char(
        required=True, readonly=True, copy=False, default=lambda self: self.env._("New")
    )
    active = fields.Boolean(default=True)
    # The order's company; an imported license (no Odoo sale) has its instance's.
    company_id = fields.Many2one(
        "res.company", compute="_compute_company_id", store=True, index=True, readonly=True
    )
    customer_id = fields.Many2one(
        "res.partner", required=True, readonly=True, index=True, tracking=True
    )
    billing_partner_id = fields.Many2one(
        "res.partner", "Billed To", required=True, readonly=True, index=True
    )
    # Required unless the license was imported from CIS (_check_sale_order).
    sale_order_id = fields.Many2one(
        "sale.order", "Order", readonly=True, index=True, ondelete="restrict"
    )
    sale_line_id = fields.Many2one(
        "sale.order.line", "Order Line", readonly=True, index=True, ondelete="set null"
    )
    user_id = fields.Many2one(
        related="sale_order_id.user_id", string="Salesperson", store=True, index=True
    )
    ordered_by_user_id = fields.Many2one(
        "res.users",
        "Bought Online By",
        readonly=True,
        groups=INTERNAL,
        help="The portal user who bought this license in the shop: it sees the key, as the "
        "license's key holders do.",
    )
    product_id = fields.Many2one("product.product", required=True, readonly=True)
    instance_id = fields.Many2one("esd.instance", "ESD Instance", required=True, readonly=True)
    # What was paid: for the billed company and the staff, never an end customer (a reseller's
    # price is its own business). The portal page shows it to the billed company.
    price_unit = fields.Monetary("Price", readonly=True, groups=INTERNAL)
    currency_id = fields.Many2one("res.currency", required=True, readonly=True)
    purchase_date = fields.Date(readonly=True, default=fields.Date.context_today)
    state = fields.Selection(
        [("active", "Active"), ("cancelled", "Cancelled")],
        default="active",
        required=True,
        readonly=True,
        tracking=True,
    )
    # The key: shown per requesting user, stored sealed where no user can read it.
    token = fields.Char(
        "License Key",
        compute="_compute_secrets",
        search="_search_token",
        help="Shown in full to the users of the license's customer and billed company; masked "
        "(last 5 characters) for everyone else. ESD users reveal it with Reveal key, which the "
        "chatter records. Search with the whole key.",
    )
    activation_link = fields.Char(compute="_compute_secrets")
    key_visible = fields.Boolean(
        compute="_compute_secrets", help="The requesting user owns the license and sees its key."
    )
    token_tail = fields.Char("Key Ends With", readonly=True, copy=False)
    token_sealed = fields.Char(copy=False, groups=fields.NO_ACCESS)
    activation_link_sealed = fields.Char(copy=False, groups=fields.NO_ACCESS)
    token_hash = fields.Char(copy=False, index=True, groups=fields.NO_ACCESS)
    access_token = fields.Char(groups=INTERNAL)
    esd_license_id = fields.Char(
        "CIS License ID", readonly=True, copy=False, index=True, groups=INTERNAL
    )
    esd_order_id = fields.Char("CIS Order ID", readonly=True, copy=False, groups=INTERNAL)
    request_id = fields.Char(
        "Idempotency Key",
        required=True,
        readonly=True,
        copy=False,
        groups=INTERNAL,
        default=lambda self: str(uuid.uuid4()),
        help="Sent as MS-RequestId: ordering again with it returns the same license, never a "
        "second one.",
    )
    # Licenses sold through CIS before Odoo (wizards/esd_license_import.py): no Odoo sale.
    imported = fields.Boolean(
        "Imported from CIS",
        readonly=True,
        copy=False,
        index=True,
        help="Sold through CIS outside Odoo and taken over by an import: no Odoo order, no "
        "invoice, no email. Its status is refreshed and it is returned as any other license.",
    )
    # Reporting measures (views/esd_asset_report_views.xml), computed in esd_asset_report.py.
    returned_rate = fields.Float(
        "Return Rate (%)",
        compute="_compute_report_measures",
        store=True,
        aggregator="avg",
        digits=(16, 1),
        help="100 for a license returned to Microsoft, 0 otherwise: its average is the share "
        "of licenses returned.",
    )
    failed_rate = fields.Float(
        "Failure Rate (%)",
        compute="_compute_report_measures",
        store=True,
        aggregator="avg",
        digits=(16, 1),
        help="100 for a license whose provisioning failed, 0 otherwise: its average is the "
        "share of licenses that failed.",
    )
    net_revenue = fields.Monetary(
        compute="_compute_report_measures",
        store=True,
        groups=INTERNAL,
        help="The price of the license, nothing once it was returned.",
    )

    # ------------------------------------------------------------------ provisioning
    sync_status = fields.Selection(
        LICENSE_SYNC_STATUSES,
        "Provisioning",
        default="unsynchronised",
        required=True,
        readonly=True,
        index=True,
        tracking=True,
    )
    sync_error = fields.Text("Provisioning Error", readonly=True, groups=INTERNAL)
    sync_attempts = fields.Integer(readonly=True, default=0, groups=INTERNAL)
    next_attempt_at = fields.Datetime(readonly=True, groups=INTERNAL)
    first_transient_error_at = fields.Datetime(
        "Waiting for CIS Since",
        readonly=True,
        copy=False,
        groups=INTERNAL,
        help="When CIS first failed to answer for this license (timeout, 5xx, rate limit, "
        "unreachable). Transient errors are retried until microsoft_esd.retry_window_hours "
        "(24 by default) have passed since; then the license fails.",
    )
    cis_may_hold = fields.Boolean(
        "Microsoft May Hold It",
        readonly=True,
        copy=False,
        groups=INTERNAL,
        help="An order of this license may have reached Microsoft without Odoo knowing its "
        "answer (a lost answer, a timeout): until CIS delivers it or refuses the same request, "
        "it is never deleted and never credited without asking CIS.",
    )
    welcome_pending = fields.Boolean(
        readonly=True,
        copy=False,
        index=True,
        groups=INTERNAL,
        help="The welcome email waits for its cron.",
    )
    # Recorded when the license is sold: its email goes there whatever the contacts say later.
    welcome_partner_ids = fields.Many2many(
        "res.partner",
        "esd_asset_mail_partner_rel",
        "asset_id",
        "partner_id",
        string="License Email Recipients",
        readonly=True,
        copy=False,
        help="Recorded at the sale: the customer and the instance's extra recipients.",
    )
    mail_to = fields.Char(
        "License Email Addresses",
        readonly=True,
        copy=False,
        groups=INTERNAL,
        help="The exact addresses recorded at the sale (the customer's Microsoft contact email "
        "and the instance's extra recipients): the license email goes there, whatever the "
        "contacts say later. Only Resend to... changes them, recorded in the chatter.",
    )
    mail_state = fields.Selection(
        [
            ("none", "Not sent yet"),
            ("queued", "Queued"),
            ("sent", "Sent"),
            ("failed", "Could not be sent"),
        ],
        "License Email",
        default="none",
        required=True,
        readonly=True,
        copy=False,
        index=True,
    )
    mail_error = fields.Char("License Email Error", readonly=True, copy=False, groups=INTERNAL)
    mail_attempts = fields.Integer(readonly=True, copy=False, groups=INTERNAL)
    mail_failed_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)
    mail_failed_generation = fields.Integer(
        readonly=True,
        copy=False,
        groups=INTERNAL,
        help="The generation of outgoing mail servers its email failed with (a server added or "
        "changed since then sends it again at once).",
    )
    mail_retry_at = fields.Datetime(
        "License Email Retried At",
        readonly=True,
        copy=False,
        groups=INTERNAL,
        help="When Odoo sends the license email again by itself (also as soon as an outgoing "
        "mail server is added or changed).",
    )

    esd_mail_key_html = fields.Html(
        "License Email Key Block",
        compute="_compute_esd_mail_key_html",
        sanitize=False,
        help="The masked key, reference and activation note (templates made before 18.0.1.7.0 "
        "show it). The license email's key block is appended by its job, never by a template.",
    )
    esd_mail_from = fields.Char("License Email Sender", compute="_compute_esd_mail_from")

    # ------------------------------------------------------------------ after the sale
    token_status = fields.Selection(
        TOKEN_STATUSES,
        readonly=True,
        tracking=True,
    )
    return_status = fields.Selection(
        [("none", "None"), ("successful", "Successful")],
        readonly=True,
        default="none",
        tracking=True,
    )
    return_state = fields.Selection(
        [
            ("none", "Not returned"),
            ("requested", "Return requested"),
            ("accepted", "Returned, credit note pending"),
            ("done", "Returned and credited"),
            ("external", "Returned at Microsoft, not credited"),
        ],
        "Return",
        default="none",
        required=True,
        readonly=True,
        copy=False,
        index=True,
        tracking=True,
    )
    return_request_id = fields.Char(readonly=True, copy=False, groups=INTERNAL)
    return_requested_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)
    activation_date = fields.Datetime(readonly=True)
    # The billing side is the staff's: an end customer never reads what its reseller paid.
    invoice_line_id = fields.Many2one(
        "account.move.line",
        compute="_compute_invoice_lines",
        store=True,
        index="btree_not_null",
        groups=INTERNAL,
    )
    credit_note_line_id = fields.Many2one(
        "account.move.line", compute="_compute_invoice_lines", store=True, groups=INTERNAL
    )
    credit_note_id = fields.Many2one(
        related="credit_note_line_id.move_id", string="Credit Note", groups=INTERNAL
    )
    invoice_id = fields.Many2one(
        related="invoice_line_id.move_id", string="Invoice", groups=INTERNAL
    )
    invoice_amount = fields.Monetary(
        related="invoice_line_id.price_total",
        string="Invoice Amount",
        currency_field="currency_id",
        groups=INTERNAL,
    )
    quantity = fields.Float(related="sale_line_id.product_uom_qty", string="Quantity")
    uom_id = fields.Many2one(related="product_id.uom_id", string="Unit")
    cancel_request_state = fields.Selection(
        [("none", "None"), ("pending", "Pending"), ("rejected", "Rejected")],
        "Cancellation Request",
        default="none",
        readonly=True,
        copy=False,
        tracking=True,
    )
    cancel_request_comment = fields.Text(readonly=True, copy=False)
    cancel_requested_by = fields.Many2one("res.partner", readonly=True, copy=False, groups=INTERNAL)
    cancel_requested_on = fields.Datetime(readonly=True, copy=False)
    portal_status_checked_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)
    portal_email_resent_at = fields.Datetime(readonly=True, copy=False, groups=INTERNAL)

    # Derived from the fields above: the one state a user reads, and that each change starts
    # from (esd_asset.py _esd_update_state, microsoft_esd/lifecycle.py).
    lifecycle_state = fields.Selection(
        lifecycle.STATES,
        "Lifecycle",
        compute="_compute_lifecycle_state",
        store=True,
        index=True,
        help="Where the license is in its life, from its provisioning, cancellation and return "
        "(docs/architecture.md draws the state machine).",
    )
    return_attempts = fields.Integer(readonly=True, default=0, copy=False, groups=INTERNAL)

    _sql_constraints = [
        ("request_id_unique", "UNIQUE(request_id)", "The idempotency key of a license is unique."),
        ("license_unique", "UNIQUE(esd_license_id)", "A CIS license is recorded once."),
    ]

    @api.depends("state", "sync_status", "return_state", "first_transient_error_at")
    def _compute_lifecycle_state(self):
        for asset in self:
            asset.lifecycle_state = lifecycle.derive(
                asset.state,
                asset.sync_status,
                asset.return_state,
                waiting=bool(asset.sudo().first_transient_error_at),
            )

    @api.depends("token_tail", "token_sealed", "activation_link_sealed")
    @api.depends_context("uid")
    def _compute_secrets(self):
        owned = self._esd_owned()
        plain = owned._esd_secrets(strict=False) if owned else {}
        for asset in self:
            asset.key_visible = asset in owned
            token, link = plain.get(asset.id) or (False, False)
            if not asset.key_visible:
                token, link = licenses.mask(asset.token_tail) or False, False
            asset.token, asset.activation_link = token, link

    def _search_token(self, operator, value):
        if operator not in ("=", "ilike", "=ilike") or not isinstance(value, str) or not value:
            raise UserError(self.env._("Search a license by its whole key."))
        digests = self._esd_vault(strict=False).lookup_hashes(value)
        return [("id", "in", self.sudo()._search([("token_hash", "in", digests)]))]

    def _register_hook(self):
        super()._register_hook()
        self._esd_vault(strict=False)  # logs a weak esd_token_key at start-up

    def _compute_access_url(self):
        res = super()._compute_access_url()
        for asset in self:
            asset.access_url = f"/my/esd/{asset.id}"
        return res

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        unnamed = [
            vals for vals in vals_list if vals.get("name", self.env._("New")) == self.env._("New")
        ]
        for vals, name in zip(unnamed, self._esd_next_names(len(unnamed)), strict=True):
            vals["name"] = name
        for vals in vals_list:
            # Made with the license, not on its first view (portal.mixin's _portal_ensure_token):
            # a page showing it never writes a license that a job may hold through CIS calls.
            vals.setdefault("access_token", str(uuid.uuid4()))
        return super().create(vals_list)

    @api.model
    def _esd_next_names(self, count):
        """``count`` references from the license sequence. A standard sequence without date
        ranges (the addon's) gives them in one query, not two per license as ``next_by_code``
        does (its search, then its ``nextval``); any other kind is drawn license by license."""
        if not count:
            return []
        Sequence = self.env["ir.sequence"].sudo()
        sequence = Sequence.search(
            [("code", "=", "esd.asset"), ("company_id", "in", [self.env.company.id, False])],
            order="company_id",
            limit=1,
        )
        if not sequence or sequence.implementation != "standard" or sequence.use_date_range:
            return [
                Sequence.next_by_code("esd.asset") or self.env._("New") for _index in range(count)
            ]
        # What ir.sequence._next_do does for a standard sequence, count times in one query.
        self.env.cr.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s) ORDER BY 1",
            [f"ir_sequence_{sequence.id:03d}", count],
        )
        return [sequence.get_next_char(number) for (number,) in self.env.cr.fetchall()]

    def write(self, vals):
        self._esd_check_user_write(vals)
        if "request_id" in vals and any(asset.request_id != vals["request_id"] for asset in self):
            raise UserError(self.env._("The idempotency key of a license never changes."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_sold(self):
        """Only a license Microsoft cannot hold is deleted: stopped before it was delivered,
        with no answer of CIS left unknown. Anything else is the proof of a sale or of an order
        Microsoft may have."""
        kept = self.filtered(
            lambda a: (
                not lifecycle.deletable(
                    a.lifecycle_state, a.sudo().cis_may_hold, bool(a.sudo().esd_license_id)
                )
            )
        )
        if kept:
            raise UserError(
                self.env._(
                    "%s cannot be deleted: it was delivered, or its order may have reached "
                    "Microsoft, or it is still to be ordered. Cancel its order to stop it; a "
                    "settled license can be archived.",
                    ", ".join(kept.mapped("name")),
                )
            )

    def _esd_check_user_write(self, vals):
        """Everything on a license is written by the addon's own methods (its state machine):
        users archive through Archive, which checks the license's state."""
        if self.env.su:
            return
        refused = [
            self._fields[name].string
            for name in vals
            if name in self._fields and self._fields[name]._module == "microsoft_esd"
        ]
        if refused:
            raise AccessError(
                self.env._(
                    "%(fields)s of a license are set by Odoo from the sale and from Microsoft, "
                    "never by hand.",
                    fields=", ".join(refused),
                )
            )

    def action_archive(self):
        """Archive settled licenses only (stopped, or returned and credited): a license that
        waits, failed, is delivered or is being returned stays where every list and job sees
        it."""
        check_caller(self)
        open_ones = self.filtered(lambda a: not lifecycle.archivable(a.lifecycle_state))
        if open_ones:
            raise UserError(
                self.env._(
                    "%s cannot be archived: it is not settled (it waits, failed, is delivered "
                    "or is being returned). Only stopped or returned-and-credited licenses are "
                    "archived.",
                    ", ".join(open_ones.mapped("name")),
                )
            )
        return super(EsdAsset, self.sudo()).action_archive()

    def action_unarchive(self):
        check_caller(self)
        return super(EsdAsset, self.sudo()).action_unarchive()

    @api.model
    def _esd_portal_domain(self, partner):
        """The licenses of ``partner``'s company: those it owns and those it was billed for (a
        reseller's end customers' licenses). The portal record rule says the same."""
        commercial = partner.commercial_partner_id
        return [
            "|",
            ("customer_id", "=", commercial.id),
            ("billing_partner_id", "=", commercial.id),
        ]

    # ------------------------------------------------------------------ the state machine
    def _esd_update_state(self, change, vals):
        """Apply ``change`` (microsoft_esd/lifecycle.py TRANSITIONS) to the licenses of ``self``
        in a state it may start from: write ``vals`` on them (as Odoo, whoever the caller), log
        and leave the others. Returns the licenses changed."""
        allowed = self.filtered(lambda a: lifecycle.allowed(change, a.lifecycle_state))
        for asset in self - allowed:
            _logger.warning(
                "ESD license %s: %s does not apply to a license in state %s; left as it is",
                asset.id,
                change,
                asset.lifecycle_state,
            )
        if allowed and vals:
            allowed.sudo().write(vals)
        return allowed

    # ------------------------------------------------------------------ the key
    @api.model
    def _esd_vault(self, strict=True):
        """The vault of ``esd_token_key`` (configuration file, never the database).

        A weak secret raises a UserError saying what a good one is; with ``strict=False`` it is
        logged and the licenses are read (and searched) as if no secret were configured.
        """
        fallback = self.env["ir.config_parameter"].sudo().get_param("database.secret")
        try:
            return _vault(config.get("esd_token_key") or "", fallback)
        except WeakSecretError as exc:
            if strict:
                raise UserError(str(exc)) from None
            _logger.error("%s", exc)
            return _vault("", fallback)

    def _esd_owned(self):
        """The licenses of ``self`` whose key the requesting user sees (never superuser mode).

        Owners are portal logins holding a keys grant (models/esd_grant.py) of the license's
        company: the login that bought its order in the shop (a grant for that order), and the
        key holders an ESD manager chose for its customer or billed company. A grant holds while
        its login still belongs to the company it was given for; moving contacts or companies,
        changing a login's email, re-inviting or merging ends it. Internal users never own a key
        (they Reveal it, audited).
        """
        user = self.env.user
        if not self or not user.share or user._is_public():
            return self.browse()
        grants = self.env["esd.grant"]._esd_valid_grants(user, "keys").sudo()
        if not grants:
            return self.browse()

        def owned(asset):
            for grant in grants:
                if grant.company_id != asset.company_id:
                    continue
                if grant.sale_order_id:
                    if grant.sale_order_id == asset.sale_order_id:
                        return True
                elif grant.partner_id in (asset.customer_id | asset.billing_partner_id):
                    return True
            return False

        return self.filtered(lambda asset: owned(asset.sudo()))

    def _esd_secrets(self, strict=True):
        """{id: (key, activation link)} in clear, for Odoo's own code (private: not over RPC)."""
        vault = self._esd_vault(strict=strict)
        result = {}
        for asset in self.sudo():
            try:
                result[asset.id] = (
                    vault.unseal(asset.token_sealed),
                    vault.unseal(asset.activation_link_sealed),
                )
            except ValueError as exc:
                if strict:
                    raise UserError(
                        self.env._("%(license)s: %(error)s", license=asset.name, error=exc)
                    ) from None
                _logger.warning("license %s: %s", asset.id, exc)
        return result

    def _esd_store_secrets(self, token, activation_link):
        """Seal the key and activation link of one license (written by Odoo, never by users)."""
        self.ensure_one()
        vault = self._esd_vault()
        self.sudo().write(
            {
                "token_sealed": vault.seal(token) or False,
                "activation_link_sealed": vault.seal(activation_link) or False,
                "token_hash": (token and vault.lookup_hash(token)) or False,
                "token_tail": (token and token[-5:]) or False,
            }
        )

    def esd_reveal_key(self):
        """The key and activation link, for an ESD user of the license's company.

        The chatter records who revealed it and when, never the key itself.
        """
        self.ensure_one()
        check_caller(self, operation="read")
        if not self.token_tail:
            raise UserError(
                self.env._("%s has no key yet: it is still being delivered.", self.name)
            )
        token, link = self._esd_secrets()[self.id]
        self.sudo().message_post(
            body=self.env._("License key revealed to %s.", self.env.user.name),
            subtype_xmlid="mail.mt_note",
        )
        return {"token": token, "activation_link": link}

    @api.model
    def _esd_reencrypt_all(self, batch_size=500):
        """Re-seal and re-hash every key not in today's form (after esd_token_key was set or
        rotated), so every key opens with the current secret and search by key keeps working.
        Returns how many licenses were rewritten."""
        vault = self._esd_vault()
        Asset = self.sudo().with_context(active_test=False, tracking_disable=True)
        done, last_id = 0, 0
        while True:
            batch = Asset.search(
                [("id", ">", last_id), ("token_sealed", "!=", False)], order="id", limit=batch_size
            )
            if not batch:
                return done
            last_id = batch[-1].id
            secrets = batch._esd_secrets()
            for asset in batch:
                token, link = secrets[asset.id]
                digest = vault.lookup_hash(token)
                if (
                    vault.is_current(asset.token_sealed)
                    and vault.is_current(asset.activation_link_sealed)
                    and asset.token_hash == digest
                ):
                    continue
                asset._esd_store_secrets(token, link)
                done += 1
