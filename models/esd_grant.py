import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .esd_access import ESD_MANAGER, check_caller

_logger = logging.getLogger(__name__)

GRANT_SCOPES = [
    ("keys", "License keys"),
    ("api", "Reseller API"),
]


class EsdGrant(models.Model):
    """What a portal login was given, for which company, by whom and when, until it ended.

    A grant is never moved or edited: it holds for the login while the login still belongs to
    the commercial partner it was given for, and ends (never to come back) when the contact or a
    company above it moves, the login or its email changes, it is invited again, merged or
    archived. Written by the addon's own code only: no user creates, writes or deletes one.
    """

    _name = "esd.grant"
    _description = "Microsoft ESD Access Grant"
    _order = "granted_at desc, id desc"
    _rec_name = "user_id"

    user_id = fields.Many2one(
        "res.users", "Login", required=True, readonly=True, index=True, ondelete="cascade"
    )
    partner_id = fields.Many2one(
        "res.partner",
        "For Company",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
        help="The commercial partner the login belonged to when the grant was given.",
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        readonly=True,
        index=True,
        help="The grant covers this company's licenses only.",
    )
    scope = fields.Selection(GRANT_SCOPES, required=True, readonly=True, index=True)
    sale_order_id = fields.Many2one(
        "sale.order",
        "Order",
        readonly=True,
        index="btree_not_null",
        ondelete="cascade",
        help="The keys of this order only: the login that bought it in the shop.",
    )
    login = fields.Char("Login at Grant", readonly=True)
    email = fields.Char("Email at Grant", readonly=True)
    granted_by_id = fields.Many2one("res.users", "Given By", readonly=True)
    granted_at = fields.Datetime("Given On", readonly=True, default=fields.Datetime.now)
    active = fields.Boolean(default=True, readonly=True)
    ended_at = fields.Datetime("Ended On", readonly=True)
    ended_by_id = fields.Many2one("res.users", readonly=True)
    end_reason = fields.Char("Why It Ended", readonly=True)

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        self._esd_check_written_by_odoo()
        return super().create(vals_list)

    def write(self, vals):
        self._esd_check_written_by_odoo()
        return super().write(vals)

    def unlink(self):
        self._esd_check_written_by_odoo()
        return super().unlink()

    def _esd_check_written_by_odoo(self):
        if not self.env.su:
            raise AccessError(self.env._("Grants are given and ended by Odoo's own code only."))

    # ------------------------------------------------------------------ business
    @api.model
    def _esd_valid_grants(self, user, scope):
        """The grants of ``scope`` that hold for ``user`` now (never for superuser mode)."""
        user = user.sudo()
        if not user or not user.active or not user.share or user._is_public():
            return self.browse()
        grants = (
            self.sudo()
            .search([("user_id", "=", user.id), ("scope", "=", scope)])
            .filtered(lambda g: g._esd_holds())
        )
        return grants.with_env(self.env)

    def _esd_holds(self):
        """Whether this grant still describes its login: the same commercial partner, the same
        login and email, a portal user still in the grant's company."""
        self.ensure_one()
        user = self.sudo().user_id
        return bool(
            self.active
            and user.active
            and user.share
            and user.partner_id.commercial_partner_id == self.partner_id
            and user.login == self.login
            and (user.email or False) == (self.email or False)
            and self.company_id in user.company_ids
        )

    @api.model
    def _esd_give(self, user, scope, company, order=None):
        """Give ``user`` a grant of ``scope`` in ``company`` (the caller was checked); the
        contact's chatter records it. Returns the grant (an existing one that holds is kept)."""
        user = user.sudo()
        order = order or self.env["sale.order"]
        existing = self._esd_valid_grants(user, scope).filtered(
            lambda g: g.company_id == company and g.sale_order_id == order
        )
        if existing:
            return existing[:1]
        grant = self.sudo().create(
            {
                "user_id": user.id,
                "partner_id": user.partner_id.commercial_partner_id.id,
                "company_id": company.id,
                "scope": scope,
                "sale_order_id": order.id,
                "login": user.login,
                "email": user.email or False,
                "granted_by_id": self.env.user.id,
            }
        )
        # Who sees which key was computed without this grant: forget it.
        self.env["esd.asset"].invalidate_model(["token", "activation_link", "key_visible"])
        if not order:
            user.partner_id.sudo().message_post(
                body=self.env._(
                    "%(user)s gave %(login)s: %(scope)s of %(company)s (%(our_company)s).",
                    user=self.env.user.name,
                    login=user.login,
                    scope=grant._esd_scope_label(),
                    company=grant.partner_id.display_name,
                    our_company=company.name,
                ),
                subtype_xmlid="mail.mt_note",
            )
        return grant

    def _esd_scope_label(self):
        self.ensure_one()
        return dict(self._fields["scope"]._description_selection(self.env))[self.scope]

    def _esd_end(self, reason):
        """End these grants for good; each contact's chatter says why."""
        grants = self.sudo().filtered("active")
        if not grants:
            return grants
        grants.write(
            {
                "active": False,
                "ended_at": fields.Datetime.now(),
                "ended_by_id": self.env.user.id,
                "end_reason": reason,
            }
        )
        for grant in grants.filtered(lambda g: not g.sale_order_id):
            grant.user_id.partner_id.sudo().message_post(
                body=self.env._(
                    "%(scope)s of %(company)s for %(login)s ended: %(reason)s",
                    scope=grant._esd_scope_label(),
                    company=grant.partner_id.display_name,
                    login=grant.login,
                    reason=reason,
                ),
                subtype_xmlid="mail.mt_note",
            )
        _logger.info("ESD grants %s ended: %s", grants.ids, reason)
        # Who sees which key was computed from the grants: forget it.
        self.env["esd.asset"].invalidate_model(["token", "activation_link", "key_visible"])
        return grants

    @api.model
    def _esd_end_for_users(self, users, reason):
        """End every grant of these logins."""
        if not users:
            return self.browse()
        grants = self.sudo().search([("user_id", "in", users.ids)])
        return grants._esd_end(reason)

    @api.model
    def _esd_end_for_partners(self, partners, reason):
        """End every grant of the logins of these contacts."""
        users = (
            self.env["res.users"]
            .sudo()
            .with_context(active_test=False)
            .search([("partner_id", "in", partners.ids)])
        )
        return self._esd_end_for_users(users, reason)

    # ------------------------------------------------------------------ what managers do
    @api.model
    def _esd_manager_gives(self, partners, scope):
        """An ESD manager gives ``scope`` to the portal logins of ``partners``, in the company it
        works in now, which must be theirs too."""
        check_caller(partners, ESD_MANAGER, "read")
        company = self.env.company
        if company not in self.env.user.company_ids:
            raise AccessError(self.env._("You do not work in %s.", company.name))
        grants = self.browse()
        for partner in partners:
            if partner.company_id and partner.company_id != company:
                raise UserError(
                    self.env._(
                        "%(partner)s belongs to %(company)s: switch to %(company)s to decide "
                        "for its contacts.",
                        partner=partner.display_name,
                        company=partner.company_id.name,
                    )
                )
            users = partner.sudo().user_ids.filtered(lambda u: u.share and u.active)
            if not users:
                raise UserError(
                    self.env._(
                        "%s has no portal access: grant it first (Action > Grant portal access), "
                        "then allow it.",
                        partner.display_name,
                    )
                )
            foreign = users.filtered(lambda u, c=company: c not in u.company_ids)
            if foreign:
                raise UserError(
                    self.env._(
                        "The login of %(partner)s belongs to %(companies)s, not to %(company)s: "
                        "an ESD manager of its own company decides for it.",
                        partner=partner.display_name,
                        companies=", ".join(foreign.company_ids.mapped("name")),
                        company=company.name,
                    )
                )
            for user in users:
                grants |= self._esd_give(user, scope, company)
        return grants

    @api.model
    def _esd_manager_ends(self, partners, scope):
        """An ESD manager ends ``scope`` for the logins of ``partners`` in its company."""
        check_caller(partners, ESD_MANAGER, "read")
        grants = self.sudo().search(
            [
                ("user_id.partner_id", "in", partners.ids),
                ("scope", "=", scope),
                ("company_id", "in", self.env.user.company_ids.ids),
                ("sale_order_id", "=", False),
            ]
        )
        return grants._esd_end(self.env._("stopped by %s", self.env.user.name))
