import logging

import psycopg2.errors

from odoo import Command, api, fields, models
from odoo.exceptions import UserError

from ..microsoft_esd import license_import
from ..microsoft_esd.errors import EsdError
from ..models import esd_jobs
from ..models.esd_access import ESD_MANAGER, check_caller

_logger = logging.getLogger(__name__)

PARTNER_TAG = "microsoft_esd.res_partner_category_esd_imported"


class EsdLicenseImport(models.TransientModel):
    """Take over the licenses a channel sold through CIS before (or beside) Odoo.

    Reads every license CIS knows for the instance's channel, and creates the ones Odoo does not
    hold as licenses marked imported: no Odoo order, no invoice, no email; the key sealed as any
    other; the status refreshed by the usual cron; returned under the usual rules. Customers and
    resellers are matched by their CIS account on the instance; an account Odoo does not know
    becomes a partner tagged "Imported from Microsoft CIS". A second run imports nothing.
    """

    _name = "esd.license.import"
    _description = "Microsoft ESD License Import"

    instance_id = fields.Many2one(
        "esd.instance",
        required=True,
        ondelete="cascade",
        domain=[("state", "=", "connected")],
        default=lambda self: self._default_instance(),
    )
    done = fields.Boolean(readonly=True)
    cis_count = fields.Integer("Licenses at CIS", readonly=True)
    asset_ids = fields.Many2many(
        "esd.asset", "esd_license_import_asset_rel", string="Imported Licenses", readonly=True
    )
    matched_partner_ids = fields.Many2many(
        "res.partner",
        "esd_license_import_matched_rel",
        string="Matched Partners",
        readonly=True,
    )
    created_partner_ids = fields.Many2many(
        "res.partner",
        "esd_license_import_created_rel",
        string="Created Partners",
        readonly=True,
    )
    known_count = fields.Integer("Already in Odoo", readonly=True)
    returned_count = fields.Integer("Returned before the import", readonly=True)
    no_product_count = fields.Integer("Product not in the catalog", readonly=True)
    no_customer_count = fields.Integer("No customer at CIS", readonly=True)
    ordered_by_odoo_count = fields.Integer(
        "Ordered by Odoo, answer pending",
        readonly=True,
        help="Licenses Odoo ordered whose answer was lost: their own retry records them.",
    )
    skipped_details = fields.Text("Skipped", readonly=True)
    imported_count = fields.Integer(compute="_compute_summary")
    matched_count = fields.Integer(compute="_compute_summary")
    created_count = fields.Integer(compute="_compute_summary")
    skipped_count = fields.Integer(compute="_compute_summary")
    summary = fields.Char(compute="_compute_summary")

    @api.model
    def _default_instance(self):
        if self.env.context.get("active_model") == "esd.instance":
            return self.env.context.get("active_id")
        return self.env["esd.instance"].search([("state", "=", "connected")], limit=1).id

    @api.depends(
        "asset_ids",
        "matched_partner_ids",
        "created_partner_ids",
        "known_count",
        "returned_count",
        "no_product_count",
        "no_customer_count",
        "ordered_by_odoo_count",
    )
    def _compute_summary(self):
        for wizard in self:
            wizard.imported_count = len(wizard.asset_ids)
            wizard.matched_count = len(wizard.matched_partner_ids)
            wizard.created_count = len(wizard.created_partner_ids)
            wizard.skipped_count = (
                wizard.known_count
                + wizard.returned_count
                + wizard.no_product_count
                + wizard.no_customer_count
                + wizard.ordered_by_odoo_count
            )
            wizard.summary = self.env._(
                "Licenses imported: %(imported)s. Partners matched: %(matched)s, created: "
                "%(created)s. Licenses skipped: %(skipped)s (%(known)s already in Odoo). "
                "Licenses at CIS: %(total)s.",
                imported=wizard.imported_count,
                matched=wizard.matched_count,
                created=wizard.created_count,
                skipped=wizard.skipped_count,
                known=wizard.known_count,
                total=wizard.cis_count,
            )

    # ------------------------------------------------------------------ the import
    def action_import(self):
        """Import the licenses CIS knows and Odoo does not; show the summary."""
        self.ensure_one()
        # The instance as stored: one of another company is refused, not silently switched.
        instance = self.sudo().instance_id.with_env(self.env)
        check_caller(instance, group=ESD_MANAGER, operation="read")
        if self.done:
            raise UserError(self.env._("This import ran already: start a new one."))
        if instance.state != "connected":
            raise UserError(
                self.env._(
                    "Connect %s first (Test Connection), then import its licenses.", instance.name
                )
            )
        instance = instance.sudo()
        self._lock_instance(instance)
        client = instance._esd_client()
        try:
            remote = list(client.iter_licenses())
        except EsdError as exc:
            raise UserError(
                self.env._("Instance %(name)s: %(error)s", name=instance.name, error=exc)
            ) from None
        Asset = self.env["esd.asset"].sudo().with_context(active_test=False)
        ids = [lic.license_id for lic in remote]
        known = Asset.search([("esd_license_id", "in", ids)]).mapped("esd_license_id")
        products = self._products(instance, {lic.product_id for lic in remote if lic.product_id})
        plan = license_import.plan(remote, known, products, self._odoo_references(instance))
        # Every account is read before anything is written: an error changes nothing.
        partners, matched, new_accounts = self._match_accounts(instance, plan.account_ids())
        try:
            details = {account_id: client.get_account(account_id) for account_id in new_accounts}
        except EsdError as exc:
            raise UserError(
                self.env._("Instance %(name)s: %(error)s", name=instance.name, error=exc)
            ) from None
        created = self.env["res.partner"]
        for account_id in new_accounts:
            partner = self._create_partner(instance, details[account_id])
            partners[account_id] = partner
            created |= partner
        assets = self._create_assets(instance, plan.to_import, partners, products)
        counts = plan.counts()
        self.sudo().write(
            {
                "done": True,
                "cis_count": len(plan.decisions),
                "asset_ids": [Command.set(assets.ids)],
                "matched_partner_ids": [Command.set(matched.ids)],
                "created_partner_ids": [Command.set(created.ids)],
                "known_count": counts[license_import.KNOWN],
                "returned_count": counts[license_import.RETURNED],
                "no_product_count": counts[license_import.NO_PRODUCT],
                "no_customer_count": counts[license_import.NO_CUSTOMER],
                "ordered_by_odoo_count": counts[license_import.ORDERED_BY_ODOO],
                "skipped_details": self._skipped_details(plan) or False,
            }
        )
        if assets or created:
            instance.message_post(body=self.summary)
        _logger.info(
            "ESD instance %s: %s licenses imported, %s partners created",
            instance.id,
            len(assets),
            len(created),
        )
        return self._reopen()

    @api.model
    def _odoo_references(self, instance):
        """The externalReference of each license of ``instance`` Odoo ordered or will order,
        not recorded yet (what provisioning sends: order/license)."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT o.name || '/' || a.name FROM esd_asset a
              JOIN sale_order o ON o.id = a.sale_order_id
             WHERE a.instance_id = %s AND a.esd_license_id IS NULL
            """,
            [instance.id],
        )
        return {row[0] for row in self.env.cr.fetchall()}

    def _lock_instance(self, instance):
        """One import of an instance at a time: a second one at once is refused."""
        try:
            with esd_jobs.expected_conflicts(), self.env.cr.savepoint():
                self.env.cr.execute(
                    "SELECT id FROM esd_instance WHERE id = %s FOR UPDATE NOWAIT", [instance.id]
                )
        except psycopg2.errors.LockNotAvailable:
            raise UserError(
                self.env._("%s is busy (another import?): try again in a minute.", instance.name)
            ) from None

    @api.model
    def _products(self, instance, product_ids):
        """{CIS product id: product.product} of the instance's catalog in Odoo."""
        templates = (
            self.env["product.template"]
            .sudo()
            .with_context(active_test=False)
            .search(
                [("esd_instance_id", "=", instance.id), ("esd_product_id", "in", list(product_ids))]
            )
        )
        return {
            template.esd_product_id: template.product_variant_ids[:1]
            for template in templates
            if template.product_variant_ids
        }

    @api.model
    def _match_accounts(self, instance, account_ids):
        """({account id: partner} of the accounts Odoo knows, those partners, the other ids)."""
        accounts = (
            self.env["esd.partner.account"]
            .sudo()
            .search([("instance_id", "=", instance.id), ("account_id", "in", account_ids)])
        )
        partners = {account.account_id: account.partner_id for account in accounts}
        matched = self.env["res.partner"].union(*partners.values())
        return partners, matched, [a for a in account_ids if a not in partners]

    @api.model
    def _create_partner(self, instance, account):
        """A company for a CIS account Odoo does not know, tagged as imported, with its account."""
        country = (
            self.env["res.country"].search([("code", "=", account.country.upper())], limit=1)
            if account.country
            else self.env["res.country"]
        )
        tag = self.env.ref(PARTNER_TAG, raise_if_not_found=False)
        partner = (
            self.env["res.partner"]
            .sudo()
            .create(
                {
                    "name": account.company_name or account.account_id,
                    "is_company": True,
                    "email": account.email or False,
                    "country_id": (country or instance.country_id).id,
                    "esd_role": account.role,
                    "category_id": [Command.link(tag.id)] if tag else [],
                }
            )
        )
        self.env["esd.partner.account"].sudo().create(
            {
                "partner_id": partner.id,
                "instance_id": instance.id,
                "account_id": account.account_id,
                "role": account.role,
                "sync_status": "synchronized",
                "synced_on": fields.Datetime.now(),
            }
        )
        return partner

    @api.model
    def _create_assets(self, instance, to_import, partners, products):
        """The imported licenses: delivered, no order, no invoice, no email; keys sealed."""
        if not to_import:
            return self.env["esd.asset"]
        today = fields.Date.context_today(self)
        vals_list = []
        for lic in to_import:
            customer = partners[lic.customer_account_id]
            reseller = partners.get(lic.reseller_account_id) if lic.reseller_account_id else None
            sold_on = lic.order_date or lic.last_modified
            vals_list.append(
                {
                    "imported": True,
                    "instance_id": instance.id,
                    "customer_id": customer.id,
                    "billing_partner_id": (reseller or customer).id,
                    "product_id": products[lic.product_id].id,
                    "currency_id": instance.company_id.currency_id.id,
                    "price_unit": 0.0,
                    "purchase_date": sold_on.date() if sold_on else today,
                    "state": "active",
                    "sync_status": "synchronized",
                    "esd_license_id": lic.license_id,
                    "esd_order_id": lic.order_id or False,
                    "token_status": lic.token_status,
                    "return_status": lic.return_status,
                    "activation_date": lic.activation_date,
                    "welcome_pending": False,
                }
            )
        assets = (
            self.env["esd.asset"]
            .sudo()
            .with_context(tracking_disable=True, mail_create_nolog=True)
            .create(vals_list)
        )
        for asset, lic in zip(assets, to_import, strict=True):
            asset._esd_store_secrets(lic.token, lic.activation_link)
            asset.message_post(
                body=self.env._(
                    "Imported from Microsoft CIS by %s: sold outside Odoo (no order, no "
                    "invoice, no email sent).",
                    self.env.user.name,
                ),
                subtype_xmlid="mail.mt_note",
            )
        return assets

    def _skipped_details(self, plan):
        """One line per license skipped for a reason someone can act on (never a key)."""
        reasons = {
            license_import.RETURNED: self.env._("returned to Microsoft before the import"),
            license_import.NO_PRODUCT: self.env._(
                "its product is not in the instance's catalog (Get Services Definition first)"
            ),
            license_import.NO_CUSTOMER: self.env._("CIS does not say who it was sold to"),
            license_import.ORDERED_BY_ODOO: self.env._(
                "Odoo ordered it and its answer was lost: Retry provisioning on that license "
                "records it"
            ),
        }
        lines = []
        for reason, label in reasons.items():
            for lic in plan.skipped(reason):
                product = f" ({lic.product_id})" if lic.product_id else ""
                lines.append(f"{lic.license_id}{product}: {label}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ the summary's lists
    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Import Licenses from CIS"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
        }

    def action_open_assets(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Imported Licenses"),
            "res_model": "esd.asset",
            "view_mode": "list,form",
            "domain": [("id", "in", self.asset_ids.ids)],
            "context": {"create": False},
        }

    def _open_partners(self, partners, title):
        return {
            "type": "ir.actions.act_window",
            "name": title,
            "res_model": "res.partner",
            "view_mode": "list,form",
            "domain": [("id", "in", partners.ids)],
        }

    def action_open_matched(self):
        self.ensure_one()
        return self._open_partners(self.matched_partner_ids, self.env._("Matched Partners"))

    def action_open_created(self):
        self.ensure_one()
        return self._open_partners(self.created_partner_ids, self.env._("Created Partners"))
