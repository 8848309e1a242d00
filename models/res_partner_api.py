from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import clean_context

from ..microsoft_esd.api import iso
from .esd_access import ESD_MANAGER, check_caller
from .esd_api_access import api_grant

API_KEY_DAYS = 365


class ResPartner(models.Model):
    """Resellers and the API: who its API users are, its end customers as the API and the
    shop create them, and its price-change webhooks."""

    _inherit = "res.partner"

    esd_api_user = fields.Boolean(
        "Reseller API User",
        compute="_compute_esd_api_user",
        help="Its portal login may use the reseller API (with its API keys) in this company. "
        "Decided by an ESD manager (Allow Reseller API), recorded in the chatter; it ends when "
        "the contact moves, its login or email changes, or it is archived.",
    )

    esd_entity_grant_ids = fields.One2many(
        "esd.grant",
        "partner_id",
        string="Grants of the Entity's Logins",
        groups="base.group_system",
        help="The grants given to the logins under this commercial entity (the portal rules of "
        "webhook endpoints read them).",
    )

    def _compute_esd_api_user(self):
        Grant = self.env["esd.grant"]
        for partner in self:
            users = partner.sudo().user_ids.filtered("share")
            partner.esd_api_user = any(
                grant.company_id == self.env.company
                for user in users
                for grant in Grant._esd_valid_grants(user, "api")
            )

    def action_esd_allow_api(self):
        """An ESD manager makes this contact's portal login an API user of its company."""
        self.env["esd.grant"]._esd_manager_gives(self, "api")
        return True

    def action_esd_deny_api(self):
        self.env["esd.grant"]._esd_manager_ends(self, "api")
        return True

    def action_esd_make_api_key(self):
        """An ESD manager makes an API key (valid a year) for this contact's portal login, an
        API user of the manager's company; it is shown once, as Odoo shows a new key, and the
        chatter records who made it, never the key."""
        self.ensure_one()
        check_caller(self, ESD_MANAGER, "read")
        company = self.env.company
        Grant = self.env["esd.grant"]
        users = self.sudo().user_ids.filtered(
            lambda u: any(g.company_id == company for g in Grant._esd_valid_grants(u, "api"))
        )
        if not users:
            raise UserError(
                self.env._(
                    "%(contact)s is not a reseller API user of %(company)s: press Allow Reseller "
                    "API first.",
                    contact=self.display_name,
                    company=company.name,
                )
            )
        user = users[0]
        expires = fields.Datetime.add(fields.Datetime.now(), days=API_KEY_DAYS)
        name = self.env._("Made by %s", self.env.user.name)
        key = self.env["res.users.apikeys"].with_user(user).sudo()._generate(None, name, expires)
        self.sudo().message_post(
            body=self.env._(
                "%(manager)s made an API key for %(login)s, valid until %(date)s; it was shown "
                "once.",
                manager=self.env.user.name,
                login=user.login,
                date=fields.Date.to_string(expires.date()),
            ),
            subtype_xmlid="mail.mt_note",
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": "res.users.apikeys.show",
            "name": self.env._("API Key Ready"),
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_key": key},
        }

    # ------------------------------------------------------------------ end customers
    def _esd_end_customer_named(self, name):
        """This reseller's end customer called ``name`` (case and spaces aside), if any: the
        shop's and the API's duplicate detection."""
        self.ensure_one()
        wanted = (name or "").strip().lower()
        return self._esd_end_customers().filtered(
            lambda p: (p.name or "").strip().lower() == wanted
        )[:1]

    def _esd_create_end_customer(self, values):
        """Create an end customer of this reseller from values the shop's validation returned
        (``EsdWebsiteSale._esd_new_customer_values``)."""
        self.ensure_one()
        return (
            self.env["res.partner"]
            .sudo()
            .with_context(clean_context(self.env.context), tracking_disable=True)
            .create(values)
        )

    @api.model
    def _esd_api_customers(self, after_id, limit):
        """The caller's reseller's end customers after ``after_id`` in id order, at most
        ``limit`` (those the shop lists for it); and whether more follow."""
        reseller = api_grant(self.env).partner_id
        customers = reseller._esd_end_customers().filtered(lambda p: p.id > after_id)
        customers = customers.sorted("id")
        return customers[:limit].with_env(self.env), len(customers) > limit

    def _esd_api_customer_values(self):
        self.ensure_one()
        partner = self.sudo()
        return {
            "id": partner.id,
            "name": partner.name,
            "email": partner.esd_email or partner.email or None,
            "phone": partner.phone or None,
            "street": partner.street or None,
            "street2": partner.street2 or None,
            "zip": partner.zip or None,
            "city": partner.city or None,
            "state": partner.state_id.code or None,
            "country": partner.country_id.code or None,
            "created_at": iso(partner.create_date),
        }

    # ------------------------------------------------------------------ price changes
    def _esd_webhook_price_changed(self, changes):
        """The ``price.changed`` webhook messages of this reseller: ``changes`` is a list of
        {"product_id", "sku", "name", "old_price", "price", "currency"} (its pricelist's prices).
        Called by ``_esd_price_changes_announced``, once per reseller and catalog sync."""
        self.ensure_one()
        reseller = self.commercial_partner_id
        companies = (
            self.env["esd.webhook.endpoint"]
            .sudo()
            .search([("partner_id", "=", reseller.id)])
            .company_id
        )
        self.env["esd.webhook.delivery"]._esd_emit(
            "price.changed",
            [
                (company, reseller, reseller.display_name, lambda: {"products": list(changes)})
                for company in companies
            ],
        )
