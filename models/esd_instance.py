import base64
import datetime
import json
import logging
import threading
import uuid

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import config as odoo_config
from odoo.tools import email_normalize, formataddr

from ..microsoft_esd import catalog_sync, pacing
from ..microsoft_esd.certificate import load_certificate
from ..microsoft_esd.client import CisClient
from ..microsoft_esd.config import DEFAULT_AUTHORITY, InstanceConfig
from ..microsoft_esd.errors import EsdError
from . import esd_jobs
from .esd_access import ESD_MANAGER, check_caller, check_companies
from .notification import CLOSE, notification

_logger = logging.getLogger(__name__)

CERTIFICATE_WARNING_DAYS = 30
# The fields that decide where the certificate's tokens are sent: system administrators only.
ROUTING_FIELDS = ("service_url", "authority", "tenant", "client_id", "resource_api", "ca_bundle")

# CIS clients reused across calls, batches and cron runs: one token, kept-alive connections.
# Keyed by the instance's write_date, so a changed configuration gets a new client.
_CLIENTS = {}
_CLIENTS_LOCK = threading.Lock()


class EsdInstance(models.Model):
    """One CIS ESD instance: the credentials and catalog of one country or region."""

    _name = "esd.instance"
    _description = "Microsoft ESD Instance"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "sequence, name"

    name = fields.Char("System Name", required=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    state = fields.Selection(
        [("draft", "Not connected"), ("connected", "Connected"), ("error", "Error")],
        default="draft",
        required=True,
        readonly=True,
        copy=False,
        tracking=True,
    )
    last_error = fields.Text(readonly=True, copy=False)
    # Connection (step 1)
    resource_api = fields.Char(
        "Resource API",
        required=True,
        help="Azure AD resource of the CIS API; the scope is <resource>/.default.",
    )
    service_url = fields.Char(
        "Service URL", required=True, help="Base URL of the CIS API (https://...)."
    )
    tenant = fields.Char(
        "Azure AD Tenant", required=True, help="Tenant id or domain of your Azure AD."
    )
    authority = fields.Char(
        help="Advanced: the Azure AD authority. Empty means " + DEFAULT_AUTHORITY + "."
    )
    channel_id = fields.Char("Channel ID", required=True)
    client_id = fields.Char(
        "Client ID", required=True, help="Application (client) id registered in Azure AD."
    )
    ca_bundle = fields.Char(
        "CA Bundle Path",
        groups="base.group_system",
        help="Advanced: a PEM file on the server trusted for the CIS and Azure AD TLS certificates "
        "(e.g. the simulator's). Empty uses the system's trusted authorities.",
    )
    # Certificate, country and language (step 2, once the connection is saved)
    certificate_file = fields.Binary(
        "Certificate",
        attachment=True,
        copy=False,
        groups="base.group_system",
        help="PFX (PKCS#12) or PEM with the private key, as registered for the Azure AD "
        "application.",
    )
    certificate_filename = fields.Char(copy=False)
    certificate_password = fields.Char(copy=False, groups="base.group_system")
    thumbprint = fields.Char(compute="_compute_certificate", store=True, readonly=True)
    certificate_expiry = fields.Datetime(compute="_compute_certificate", store=True, readonly=True)
    certificate_error = fields.Char(compute="_compute_certificate", store=True, readonly=True)
    certificate_expiring = fields.Boolean(compute="_compute_certificate_expiring")
    country_id = fields.Many2one("res.country", tracking=True)
    lang = fields.Selection(
        "_lang_selection",
        "Catalog Language",
        default=lambda self: self.env.lang or "en_US",
        tracking=True,
    )
    return_window_days = fields.Integer(
        "Return Window (days)",
        default=30,
        help="Licenses can be returned this many days after purchase.",
    )
    rate_limit = fields.Float(
        "CIS Requests per Second",
        default=0.0,
        digits=(16, 2),
        tracking=True,
        help="The most requests a second Odoo sends to this instance, counted over all its "
        "workers and servers (0: no limit): that many (rounded down) in each second of the "
        "clock, evenly spaced in its first 0.8 s. Set it a little under the limit Microsoft "
        "gives your channel, so that its answers 'too many requests' stay rare.",
    )
    extra_recipient_ids = fields.Many2many(
        "res.partner",
        string="Extra License Recipients",
        help="Also receive every license email of this instance (e.g. a managed-services "
        "provider).",
    )
    catalog_last_sync = fields.Datetime("Last Catalog Sync", readonly=True, copy=False)
    license_status_synced_at = fields.Datetime("Last Status Refresh", readonly=True, copy=False)
    product_count = fields.Integer(compute="_compute_product_count")
    can_edit_routing = fields.Boolean(
        compute="_compute_can_edit_routing",
        # A new record's form computes no field that depends on nothing it fills in: the
        # default gives it the same answer.
        default=lambda self: self._esd_user_can_edit_routing(),
        help="The requesting user may change where the certificate's tokens are sent.",
    )

    _sql_constraints = [
        (
            "return_window_positive",
            "CHECK(return_window_days >= 0)",
            "The return window cannot be negative.",
        ),
        (
            "rate_limit_positive",
            "CHECK(rate_limit >= 0)",
            "The CIS requests per second cannot be negative (0 means no limit).",
        ),
    ]

    def _register_hook(self):
        super()._register_hook()
        self._esd_delete_neutralized_certificates()

    @api.model
    def _esd_delete_neutralized_certificates(self):
        """Delete the certificates a neutralization detached, so their files leave the filestore.

        Neutralization is SQL only: it cannot mark files for Odoo's filestore cleanup.
        """
        certificates = (
            self.env["ir.attachment"]
            .sudo()
            .search([("res_model", "=", "esd.neutralized.certificate")])
        )
        if certificates:
            certificates.unlink()
            _logger.info("deleted %s neutralized ESD certificates", len(certificates))

    @api.model
    def _lang_selection(self):
        return self.env["res.lang"].get_installed()

    @api.depends("certificate_file", "certificate_password")
    def _compute_certificate(self):
        for instance in self:
            data = instance.sudo().certificate_file
            instance.thumbprint = instance.certificate_expiry = instance.certificate_error = False
            if not data:
                continue
            try:
                cert = load_certificate(
                    base64.b64decode(data), instance.sudo().certificate_password, allow_expired=True
                )
            except EsdError as exc:
                instance.certificate_error = str(exc)
                continue
            instance.thumbprint = cert.thumbprint
            instance.certificate_expiry = cert.not_after

    @api.depends_context("uid")
    def _compute_can_edit_routing(self):
        self.can_edit_routing = self._esd_user_can_edit_routing()

    @api.model
    def _esd_user_can_edit_routing(self):
        return self.env.user.has_group("base.group_system")

    @api.depends("certificate_expiry")
    def _compute_certificate_expiring(self):
        limit = fields.Datetime.now() + datetime.timedelta(days=CERTIFICATE_WARNING_DAYS)
        for instance in self:
            instance.certificate_expiring = bool(
                instance.certificate_expiry and instance.certificate_expiry <= limit
            )

    def _compute_product_count(self):
        groups = (
            self.env["product.template"]
            .with_context(active_test=False)
            ._read_group([("esd_instance_id", "in", self.ids)], ["esd_instance_id"], ["__count"])
        )
        counts = {instance.id: count for instance, count in groups}
        for instance in self:
            instance.product_count = counts.get(instance.id, 0)

    @api.constrains("service_url", "authority")
    def _check_urls(self):
        for instance in self:
            for label, url in (
                ("service URL", instance.service_url),
                ("authority", instance.authority),
            ):
                if url and not url.startswith("https://"):
                    raise ValidationError(
                        self.env._(
                            "The %(label)s of %(name)s must start with https://.",
                            label=label,
                            name=instance.name,
                        )
                    )

    @api.constrains("certificate_file", "certificate_password")
    def _check_certificate(self):
        for instance in self:
            if instance.certificate_error:
                raise ValidationError(
                    self.env._(
                        "The certificate of %(name)s cannot be used: %(error)s",
                        name=instance.name,
                        error=instance.certificate_error,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._esd_check_routing_write(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._esd_check_routing_write(vals)
        connection_fields = {
            "resource_api",
            "service_url",
            "tenant",
            "authority",
            "channel_id",
            "client_id",
            "certificate_file",
            "certificate_password",
            "ca_bundle",
            "country_id",
            "lang",
        }
        if connection_fields & set(vals) and "state" not in vals:
            vals = dict(vals, state="draft")
        recipients_before = (
            {instance: instance.extra_recipient_ids for instance in self}
            if "extra_recipient_ids" in vals
            else {}
        )
        result = super().write(vals)
        for instance, before in recipients_before.items():
            instance._esd_log_recipients_change(before)
        if vals.get("certificate_file"):
            activity_type = self.env.ref("microsoft_esd.mail_activity_esd_certificate")
            self.activity_ids.filtered(
                lambda a: a.activity_type_id == activity_type
            ).action_feedback(feedback=self.env._("A new certificate was uploaded."))
        return result

    def _esd_log_recipients_change(self, before):
        """Who receives every license key of this instance: each change recorded in the chatter."""
        after = self.extra_recipient_ids
        if after == before:
            return

        def names(partners):
            return ", ".join(f"{p.name} <{p.email or ''}>" for p in partners) or "-"

        self.sudo().message_post(
            body=self.env._(
                "%(user)s changed the extra license recipients (they receive every license key "
                "of this instance). Added: %(added)s. Removed: %(removed)s.",
                user=self.env.user.name,
                added=names(after - before),
                removed=names(before - after),
            ),
            subtype_xmlid="mail.mt_note",
        )

    def _esd_check_routing_write(self, vals):
        """Only system administrators change where the certificate's tokens go."""
        routed = [name for name in ROUTING_FIELDS if name in vals]
        if routed and not self.env.su and not self.env.user.has_group("base.group_system"):
            raise AccessError(
                self.env._(
                    "Only system administrators may change %(fields)s: they decide where the "
                    "certificate's access tokens are sent.",
                    fields=", ".join(self._fields[name].string for name in routed),
                )
            )

    def _esd_license_recipients(self, customer):
        """Who receives the email of a license sold to ``customer`` through this instance, as
        recorded at the sale: (partners, their exact addresses). The customer's Microsoft
        contact email and each extra recipient's email, one valid address each."""
        partners, addresses = self.env["res.partner"], []
        for partner, email in [(customer, customer.esd_email or customer.email)] + [
            (extra, extra.email) for extra in self.sudo().extra_recipient_ids
        ]:
            normalized = email_normalize(email or "")
            if normalized and normalized not in [a for _n, a in addresses]:
                partners |= partner
                addresses.append((partner.name or "", normalized))
        return partners, ", ".join(formataddr(address) for address in addresses)

    # ------------------------------------------------------------------ client
    def _esd_config(self):
        """The plain configuration the pure client takes."""
        self.ensure_one()
        secret = self.sudo()
        if not secret.certificate_file:
            raise UserError(
                self.env._(
                    "%(name)s has no certificate: upload the PFX or PEM file registered in "
                    "Azure AD.",
                    name=self.name,
                )
            )
        if not self.country_id:
            raise UserError(
                self.env._(
                    "%(name)s has no country: choose the country of its catalog.", name=self.name
                )
            )
        try:
            return InstanceConfig(
                service_url=self.service_url,
                resource_api=self.resource_api,
                tenant=self.tenant,
                channel_id=self.channel_id,
                client_id=self.client_id,
                authority=self.authority or "",
                certificate_data=base64.b64decode(secret.certificate_file),
                certificate_password=secret.certificate_password or "",
                ca_bundle=secret.ca_bundle or "",
                country=self.country_id.code,
                language=catalog_sync.odoo_language_to_cis(self.lang),
            )
        except EsdError as exc:
            raise UserError(self.env._("%(name)s: %(error)s", name=self.name, error=exc)) from None

    def _esd_pacer(self):
        """The pace every CIS request of this instance waits for (in every worker and server),
        or None when it has no rate limit."""
        self.ensure_one()
        if self.rate_limit <= 0:
            return None
        store = self.env["esd.instance.pace"]._esd_store(self.id)
        return pacing.Pacer(self.rate_limit, store)

    def _cis_client(self, **options):
        config = self._esd_config()
        try:
            return CisClient(config, pacer=self._esd_pacer(), **options)
        except EsdError as exc:
            raise UserError(self._error_text(exc)) from None

    def _esd_client(self):
        """The shared client of this instance (not to be closed by callers)."""
        self.ensure_one()
        key = (self.env.cr.dbname, self.id, str(self.write_date))
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                for stale in [k for k in _CLIENTS if k[:2] == key[:2]]:
                    _CLIENTS.pop(stale).close()
                # Every thread of the process shares it: the pool of each cron thread's
                # provisioning run, the cron threads themselves, HTTP requests. A connection
                # the pool cannot keep is closed (urllib3 logs a warning each time).
                parallelism = self.env["esd.asset"]._esd_parallelism()
                threads = max(1, odoo_config.get("max_cron_threads") or 1)
                client = self._cis_client(pool_size=parallelism * threads + 4)
                _CLIENTS[key] = client
            return client

    def _error_text(self, exc):
        return self.env._("Instance %(name)s: %(error)s", name=self.name, error=exc)

    # ------------------------------------------------------------------ actions
    def action_test_connection(self):
        self.ensure_one()
        check_caller(self, ESD_MANAGER, "read")
        try:
            with self._cis_client() as client:
                report = client.check()
        except (EsdError, UserError) as exc:
            message = str(exc) if isinstance(exc, UserError) else self._error_text(exc)
            self.write({"state": "error", "last_error": message})
            self.message_post(body=self.env._("Connection test failed: %s", message))
            return notification(self.env._("Connection failed"), message, "danger")
        self.write({"state": "connected", "last_error": False})
        message = self.env._(
            "Authenticated and read %(count)s catalog items in %(ms)s ms.",
            count=report["catalogItems"],
            ms=report["elapsedMs"],
        )
        self.message_post(body=self.env._("Connection test succeeded. %s", message))
        return notification(self.env._("Connected"), message, next_action=CLOSE)

    def action_retry_failed_licenses(self):
        """Order again every active license of these instances whose provisioning failed."""
        check_caller(self, operation="read")
        failed = (
            self.env["esd.asset"]
            .sudo()
            .search(
                [
                    ("instance_id", "in", self.ids),
                    ("sync_status", "=", "failed"),
                    ("state", "=", "active"),
                ]
            )
        )
        if not failed:
            raise UserError(self.env._("No license of %s failed.", ", ".join(self.mapped("name"))))
        failed.with_env(self.env).action_retry_provisioning()  # checks its caller again
        return notification(
            self.env._("Provisioning retried"),
            self.env._("%s licenses are being ordered again.", len(failed)),
        )

    def action_get_services_definition(self):
        """Download the catalog ("Get Services Definition") and show what changed."""
        self.ensure_one()
        check_caller(self, ESD_MANAGER, "read")
        # Products are written by the sync itself, not with the manager's own product rights.
        result = self.sudo()._sync_catalog()
        return result.with_env(self.env).action_open()

    def action_esd_edit_license_template(self):
        """The license email of this instance's company, for its ESD managers."""
        self.ensure_one()
        check_caller(self, ESD_MANAGER, "read")
        return self._esd_edit_license_template(self.company_id)

    @api.model
    def _esd_edit_license_template(self, company):
        """The license email template of ``company`` (made from the shared one the first time),
        for an ESD manager working in it."""
        check_caller(self, ESD_MANAGER, "read")
        check_companies(self.env, company, self.env._("The license email"))
        return self.env["mail.template"]._esd_action_edit_company_copy(
            "microsoft_esd.mail_template_esd_welcome", company
        )

    def action_view_products(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_catalog")
        action["domain"] = [("esd_instance_id", "=", self.id)]
        action["context"] = {"active_test": False, "search_default_groupby_status": 1}
        return action

    # ------------------------------------------------------------------ catalog
    def _sync_catalog(self):
        """Fetch the whole catalog first, then apply it in one transaction: never half a sync."""
        self.ensure_one()
        correlation_id = str(uuid.uuid4())
        try:
            with self._cis_client() as client:
                items = list(client.iter_catalog(correlation_id=correlation_id))
            Product = self.env["product.template"].with_context(active_test=False)
            existing = Product.search_read(
                [("esd_instance_id", "=", self.id)],
                [
                    "esd_product_id",
                    "esd_fingerprint",
                    "esd_catalog_status",
                    "esd_cis_price",
                    "esd_cis_currency",
                ],
            )
            known = {
                row["esd_product_id"]: catalog_sync.Known(
                    row["id"],
                    row["esd_fingerprint"] or "",
                    row["esd_catalog_status"] or "active",
                    row["esd_cis_price"] if row["esd_cis_currency"] else None,
                    row["esd_cis_currency"] or None,
                )
                for row in existing
            }
            plan = catalog_sync.plan(known, items)
        except EsdError as exc:
            message = self._error_text(exc)
            _logger.warning("catalog sync of ESD instance %s failed: %s", self.id, message)
            raise UserError(
                message
                + "\n"
                + self.env._(
                    "The catalog was not changed. Check the connection settings and test the "
                    "connection."
                )
            ) from None
        products, pricing = self._esd_apply_catalog(plan, correlation_id)
        self.catalog_last_sync = fields.Datetime.now()
        result = self.env["esd.catalog.sync.result"].create(
            {
                "instance_id": self.id,
                "correlation_id": correlation_id,
                "total_count": len(items),
                "unchanged_count": plan.unchanged,
                "skipped_count": plan.skipped,
                "new_product_ids": [fields.Command.set(products["new"].ids)],
                "updated_product_ids": [fields.Command.set(products["updated"].ids)],
                "discontinued_product_ids": [fields.Command.set(products["discontinued"].ids)],
                "price_change_ids": [fields.Command.set(pricing["price_changes"].ids)],
                "below_cost_product_ids": [fields.Command.set(pricing["below_cost"].ids)],
                "price_warnings": "\n".join(pricing["warnings"]) or False,
            }
        )
        self.message_post(body=result.summary, subtype_xmlid="mail.mt_note")
        return result

    @api.model
    def _cron_sync_catalogs(self):
        """Monthly: Microsoft publishes its catalog changes once a month. One instance at a
        time, each committed: a failing instance neither undoes the catalogs synced before it
        nor stops the others, and its error state outlives the run."""
        instances = self.search([("state", "=", "connected")])
        esd_jobs.each_in_savepoint(
            instances, self._esd_sync_catalog_or_record, "its catalog sync failed", commit_each=True
        )
        esd_jobs.finish(self.env, len(instances), 0)

    @api.model
    def _esd_sync_catalog_or_record(self, instance):
        try:
            with self.env.cr.savepoint():
                instance._sync_catalog()
        except UserError as exc:
            instance.write({"state": "error", "last_error": str(exc)})
            instance.message_post(body=self.env._("Monthly catalog sync failed: %s", exc))

    @api.model
    def _cron_check_certificates(self):
        """Plan an activity for the ESD managers when a certificate expires within 30 days."""
        limit = fields.Datetime.now() + datetime.timedelta(days=CERTIFICATE_WARNING_DAYS)
        managers = self.env.ref("microsoft_esd.group_esd_manager").users.filtered(
            lambda u: not u.share and u.active and u.id != self.env.ref("base.user_root").id
        )
        activity_type = self.env.ref("microsoft_esd.mail_activity_esd_certificate")
        expiring = self.search([("certificate_expiry", "<=", limit)])
        for instance in expiring:
            planned = instance.activity_ids.filtered(
                lambda a: a.activity_type_id == activity_type
            ).user_id
            for user in managers - planned:
                instance.activity_schedule(
                    "microsoft_esd.mail_activity_esd_certificate",
                    summary=self.env._("Renew the ESD certificate %s", instance.thumbprint),
                    note=self.env._(
                        "The certificate of %(name)s expires on %(date)s. Register a new "
                        "certificate for the Azure AD application and upload it here.",
                        name=instance.name,
                        date=fields.Date.to_string(instance.certificate_expiry.date()),
                    ),
                    date_deadline=instance.certificate_expiry.date(),
                    user_id=user.id,
                )
        esd_jobs.finish(self.env, len(expiring), 0)

    # ------------------------------------------------------------------ demo
    @api.model
    def _esd_values_from_simulator(self, config_path):
        """Instance values from the ``instance.json`` a running simulator wrote."""
        with open(config_path, encoding="utf-8") as handle:
            config = json.load(handle)
        with open(config["certificate_path"], "rb") as handle:
            certificate = base64.b64encode(handle.read())
        country = self.env["res.country"].search([("code", "=", config["country"])], limit=1)
        return {
            "name": f"CIS Simulator ({config['country']})",
            "resource_api": config["resource_api"],
            "service_url": config["service_url"],
            "tenant": config["tenant"],
            "authority": config["authority"],
            "channel_id": config["channel_id"],
            "client_id": config["client_id"],
            "ca_bundle": config["ca_bundle"],
            "certificate_file": certificate,
            "certificate_filename": "client.pfx",
            "certificate_password": config["certificate_password"],
            "country_id": country.id,
            "lang": config["language"].replace("-", "_"),
        }

    @api.model
    def _esd_setup_from_simulator(self, config_path, xmlid="microsoft_esd.esd_instance_simulator"):
        """Create or update the instance that points at a running simulator (``make demo``)."""
        vals = self._esd_values_from_simulator(config_path)
        instance = self.env.ref(xmlid, raise_if_not_found=False)
        if instance:
            instance.write(vals)
        else:
            instance = self.create(vals)
            module, name = xmlid.split(".")
            self.env["ir.model.data"].create(
                {
                    "module": module,
                    "name": name,
                    "model": self._name,
                    "res_id": instance.id,
                    "noupdate": True,
                }
            )
        return instance
