from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_normalize

from .const import ACCOUNT_SYNC_STATUSES, ESD_ROLES
from .esd_access import ESD_MANAGER, check_caller


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

    esd_key_holder = fields.Boolean(
        "License Key Holder",
        compute="_compute_esd_key_holder",
        help="Its portal users see in full the license keys of its company. Decided by an ESD "
        "manager (Allow License Keys), recorded in the chatter; a login given to this contact "
        "later, or a contact moved under another company, does not inherit it.",
    )

    @api.depends("user_ids.esd_key_holder")
    def _compute_esd_key_holder(self):
        for partner in self:
            users = partner.sudo().user_ids.filtered("share")
            partner.esd_key_holder = bool(users) and all(users.mapped("esd_key_holder"))

    def action_esd_allow_keys(self):
        """An ESD manager lets this contact's portal users see its company's license keys."""
        return self._esd_set_key_holder(True)

    def action_esd_deny_keys(self):
        return self._esd_set_key_holder(False)

    def _esd_set_key_holder(self, allowed):
        check_caller(self, ESD_MANAGER, "read")
        for partner in self:
            users = partner.sudo().user_ids.filtered("share")
            if allowed and not users:
                raise UserError(
                    self.env._(
                        "%s has no portal access: grant it first (Action > Grant portal access), "
                        "then allow it to see license keys.",
                        partner.display_name,
                    )
                )
            users.write({"esd_key_holder": allowed})
            wording = (
                self.env._("%(user)s allowed %(partner)s to see the license keys of %(company)s.")
                if allowed
                else self.env._(
                    "%(user)s stopped %(partner)s from seeing the license keys of %(company)s."
                )
            )
            partner.sudo().message_post(
                body=wording
                % {
                    "user": self.env.user.name,
                    "partner": partner.display_name,
                    "company": partner.commercial_partner_id.display_name,
                },
                subtype_xmlid="mail.mt_note",
            )
        return True

    def write(self, vals):
        # A contact moved to another company no longer sees keys: the new company never chose it.
        if "parent_id" in vals:
            moved = self.filtered(lambda p: p.parent_id.id != vals["parent_id"])
            moved.sudo().user_ids.filtered("esd_key_holder").write({"esd_key_holder": False})
        return super().write(vals)

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
