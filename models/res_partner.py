from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from .const import ACCOUNT_SYNC_STATUSES, ESD_ROLES


class ResPartner(models.Model):
    _inherit = "res.partner"

    esd_role = fields.Selection(
        ESD_ROLES,
        string="ESD Role",
        help="How this company is known to Microsoft CIS: a reseller ordering for end customers, "
        "or an end customer (user).",
    )
    esd_email = fields.Char(
        "Microsoft Contact Email",
        help="The address CIS knows this company by (default: its email).",
    )
    esd_account_ids = fields.One2many("esd.partner.account", "partner_id", string="CIS Accounts")
    esd_sync_status = fields.Selection(
        ACCOUNT_SYNC_STATUSES,
        string="ESD Sync Status",
        compute="_compute_esd_sync_status",
    )

    esd_asset_count = fields.Integer("Licenses", compute="_compute_esd_asset_count")
    esd_reseller_id = fields.Many2one(
        "res.partner",
        "Registered by Reseller",
        index="btree_not_null",
        help="The reseller that registered this end customer in the shop; it alone may order for "
        "it there, with the customers it ordered for before.",
    )

    esd_grant_ids = fields.One2many(
        "esd.grant",
        compute="_compute_esd_grants",
        string="Access Grants",
        help="What the logins of this contact were given (license keys, the reseller API), for "
        "which company, by whom and when, and why each grant ended.",
    )
    esd_key_holder = fields.Boolean(
        "License Key Holder",
        compute="_compute_esd_grants",
        help="Its portal logins see in full the license keys of its company, in the current "
        "company: an ESD manager gave them (Allow License Keys). Moving the contact or a company "
        "above it, changing its email or login, inviting it again, merging or archiving it ends "
        "the grant.",
    )

    @api.depends_context("company", "uid")
    def _compute_esd_grants(self):
        Grant = self.env["esd.grant"].sudo().with_context(active_test=False)
        grants = Grant.search([("user_id.partner_id", "in", self.ids)]) if self.ids else Grant
        for partner in self:
            mine = grants.filtered(lambda g, p=partner: g.user_id.partner_id == p)
            partner.esd_grant_ids = mine.filtered(lambda g: not g.sale_order_id)
            users = partner.sudo().user_ids.filtered(lambda u: u.share and u.active)
            holding = mine.filtered(
                lambda g: (
                    g.scope == "keys"
                    and not g.sale_order_id
                    and g.company_id == self.env.company
                    and g._esd_holds()
                )
            )
            partner.esd_key_holder = bool(users) and set(users.ids) <= set(holding.user_id.ids)

    def action_esd_allow_keys(self):
        """An ESD manager lets this contact's portal logins see its company's license keys (of
        the company the manager works in now)."""
        self.env["esd.grant"]._esd_manager_gives(self, "keys")
        return True

    def action_esd_deny_keys(self):
        self.env["esd.grant"]._esd_manager_ends(self, "keys")
        return True

    # What ends the grants of a contact's logins when it changes on the contact or above it.
    _ESD_STRUCTURE_FIELDS = ("parent_id", "is_company", "active")

    def write(self, vals):
        moved = self.browse()
        if any(name in vals for name in self._ESD_STRUCTURE_FIELDS):
            moved = self.filtered(lambda p: p._esd_structure_changes(vals))
            if moved:
                # The contacts under a company that moves move with it.
                moved = self.with_context(active_test=False).search([("id", "child_of", moved.ids)])
        emailed = self.browse()
        if "email" in vals:
            emailed = self.filtered(lambda p: (p.email or False) != (vals["email"] or False))
        result = super().write(vals)
        Grant = self.env["esd.grant"]
        if moved:
            Grant._esd_end_for_partners(
                moved, self.env._("the contact or a company above it was moved or changed")
            )
        if emailed:
            Grant._esd_end_for_partners(emailed, self.env._("its email changed"))
        return result

    def _esd_structure_changes(self, vals):
        """Whether ``vals`` changes where this contact stands: its parent, company or archive."""
        self.ensure_one()
        return (
            ("parent_id" in vals and self.parent_id.id != (vals["parent_id"] or False))
            or ("is_company" in vals and self.is_company != bool(vals["is_company"]))
            or ("active" in vals and self.active != bool(vals["active"]))
        )

    def _compute_esd_asset_count(self):
        Asset = self.env["esd.asset"]
        for partner in self:
            partner.esd_asset_count = Asset.search_count(Asset._esd_portal_domain(partner))

    def action_view_esd_assets(self):
        self.ensure_one()
        commercial = self.commercial_partner_id
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "microsoft_esd.action_esd_asset_partner"
        )
        action["domain"] = self.env["esd.asset"]._esd_portal_domain(commercial)
        action["display_name"] = self.env._("Licenses of %s", commercial.display_name)
        return action

    @api.depends("esd_account_ids.sync_status")
    def _compute_esd_sync_status(self):
        for partner in self:
            statuses = set(partner.esd_account_ids.mapped("sync_status"))
            if "failed" in statuses:
                partner.esd_sync_status = "failed"
            elif statuses == {"synchronized"}:
                partner.esd_sync_status = "synchronized"
            else:
                partner.esd_sync_status = "not_synced"

    def action_esd_sync_options(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Microsoft ESD Sync Options"),
            "res_model": "esd.partner.sync.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_partner_id": self.id},
        }

    # ------------------------------------------------------------------ business
    def signup_prepare(self, signup_type="signup"):
        """Odoo's shop confirmation page calls this on every render (its Sign Up button). A
        signup token is made from the partner's id, last login and signup type only, so a
        partner that already has this type is left unwritten: the page never waits on the
        customer's row, which the license job's invoicing may hold."""
        to_write = self.filtered(lambda partner: partner.sudo().signup_type != signup_type)
        super(ResPartner, to_write).signup_prepare(signup_type=signup_type)
        return True

    def _esd_is_reseller(self):
        return self.commercial_partner_id.esd_role == "reseller"

    def _esd_end_customers(self):
        """The end customers of this reseller: those it registered in the shop and those it
        ordered for before; never another reseller's."""
        self.ensure_one()
        reseller = self.commercial_partner_id
        registered = self.sudo().search([("esd_reseller_id", "=", reseller.id)])
        ordered_for = (
            self.env["sale.order"]
            .sudo()
            .search(
                [
                    ("partner_id", "child_of", reseller.id),
                    ("esd_end_customer_id", "!=", False),
                    ("state", "=", "sale"),
                ]
            )
            .esd_end_customer_id.commercial_partner_id
        )
        return (registered | ordered_for) - reseller

    def _esd_check_syncable(self, role=None):
        """The rules CIS enforces, checked before calling it. Returns the contact email."""
        self.ensure_one()
        if self.parent_id:
            raise UserError(
                self.env._(
                    "%(contact)s belongs to %(company)s: CIS accounts have no parent account, so "
                    "synchronize the company %(company)s instead.",
                    contact=self.display_name,
                    company=self.commercial_partner_id.display_name,
                )
            )
        if not (role or self.esd_role):
            raise UserError(
                self.env._(
                    "Choose the ESD role of %s (reseller or user) in its Sync Options.",
                    self.display_name,
                )
            )
        email = email_normalize(self.esd_email or self.email or "")
        if not email:
            raise UserError(
                self.env._(
                    "%s needs a valid Microsoft contact email (Sync Options) before it can be "
                    "synchronized.",
                    self.display_name,
                )
            )
        return email

    def _esd_account(self, instance):
        return self.esd_account_ids.filtered(lambda a: a.instance_id == instance)[:1]

    def _esd_sync(self, instance, role=None):
        """Save & Synchronize: synchronize this partner's account on ``instance`` now.

        Returns None when done, else what CIS answered. Nothing is raised once CIS was called:
        the account's request id and outcome are kept with the request's transaction, so that a
        retry after a lost answer repeats the same request instead of creating a second
        account.
        """
        self.ensure_one()
        role = role or self.esd_role
        self._esd_check_syncable(role)
        account = self.env["esd.partner.account"]._esd_ensure(self, instance)
        if account.sync_status != "not_synced" or not account.request_id:
            account._esd_new_request()
        error = account._esd_sync(role)
        if error:
            return self.env._(
                "%(partner)s could not be synchronized with %(instance)s: %(error)s",
                partner=self.display_name,
                instance=instance.name,
                error=error,
            )
        return None
