from odoo import api, fields, models, tools
from odoo.exceptions import UserError

from ..microsoft_esd import webhooks
from ..microsoft_esd.api import Problem, iso
from .esd_access import ESD_MANAGER, check_caller
from .esd_api_access import api_grant

# Tests (only) let webhooks reach http://127.0.0.1: never set it in production.
ALLOW_LOOPBACK_PARAM = "microsoft_esd.webhook_allow_loopback"


class EsdWebhookEndpoint(models.Model):
    """A URL of a reseller's system that receives the events it chose, signed with a secret
    shown once (Standard Webhooks). Registered by the reseller's API users (API or portal);
    its deliveries are ``esd.webhook.delivery``. An endpoint failing for 24 hours is disabled,
    with an activity for the ESD managers; its owner or an ESD manager enables it again."""

    _name = "esd.webhook.endpoint"
    _description = "Reseller Webhook Endpoint"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _rec_name = "url"

    url = fields.Char("URL", required=True, readonly=True)
    events = fields.Char(
        required=True, readonly=True, help="The events sent here, separated by spaces."
    )
    partner_id = fields.Many2one(
        "res.partner", "Reseller", required=True, readonly=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one("res.company", required=True, readonly=True, index=True)
    active = fields.Boolean(default=True, readonly=True)
    state = fields.Selection(
        [("enabled", "Enabled"), ("disabled", "Disabled")],
        default="enabled",
        required=True,
        readonly=True,
        tracking=True,
    )
    disabled_reason = fields.Char("Why Disabled", readonly=True)
    failing_since = fields.Datetime(
        readonly=True, help="Its deliveries fail since then; after 24 hours it is disabled."
    )
    last_success_at = fields.Datetime("Last Delivered", readonly=True)
    created_by_id = fields.Many2one("res.users", "Registered By", readonly=True)
    secret_sealed = fields.Char(groups=fields.NO_ACCESS)
    delivery_ids = fields.One2many("esd.webhook.delivery", "endpoint_id", string="Deliveries")

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        self._esd_check_written_by_odoo()
        records = super().create(vals_list)
        self.env.registry.clear_cache()  # _esd_subscriptions
        return records

    def write(self, vals):
        self._esd_check_written_by_odoo()
        result = super().write(vals)
        if {"active", "state", "events"} & set(vals):
            self.env.registry.clear_cache()
        return result

    def _esd_check_written_by_odoo(self):
        """Endpoints are registered, enabled and disabled through their actions only."""
        if not self.env.su:
            raise UserError(self.env._("Webhook endpoints are changed through their actions only."))

    # ------------------------------------------------------------------ backend actions
    def action_enable(self):
        """Send to this endpoint again (ESD managers of its company)."""
        check_caller(self, ESD_MANAGER, "read")
        self.sudo()._esd_enable()
        return True

    def action_disable(self):
        check_caller(self, ESD_MANAGER, "read")
        self.sudo()._esd_disable(self.env._("disabled by %s", self.env.user.name))
        return True

    # ------------------------------------------------------------------ reseller operations
    # Private: the API and portal controllers call them; each checks its caller itself.
    @api.model
    def _esd_register(self, url, events, channel):
        """Register a webhook endpoint for the caller's reseller; returns (endpoint, secret).

        The secret is returned here only, once; it is stored sealed."""
        grant = api_grant(self.env)
        url = (url or "").strip() if isinstance(url, str) else url
        try:
            parts = webhooks.check_url(url, self._esd_allow_loopback())
            webhooks.public_addresses(
                parts.hostname,
                parts.port or (443 if parts.scheme == "https" else 80),
                self._esd_allow_loopback(),
            )
        except webhooks.UrlRefused as exc:
            raise Problem("url-refused", str(exc)) from None
        events = self._esd_check_events(events)
        secret = webhooks.new_secret()
        endpoint = self.sudo().create(
            {
                "url": url,
                "events": " ".join(events),
                "partner_id": grant.partner_id.id,
                "company_id": grant.company_id.id,
                "created_by_id": self.env.user.id,
                "secret_sealed": self.env["esd.asset"]._esd_vault().seal(secret),
            }
        )
        endpoint.message_post(
            body=self.env._(
                "Registered by %(user)s (%(channel)s) for %(events)s.",
                user=self.env.user.name,
                channel=channel,
                events=", ".join(events),
            ),
            subtype_xmlid="mail.mt_note",
        )
        return endpoint.with_env(self.env), secret

    @api.model
    def _esd_check_events(self, events):
        if (
            not isinstance(events, list)
            or not events
            or any(event not in webhooks.EVENTS for event in events)
        ):
            raise Problem(
                "invalid-request",
                "events must be a non-empty list among " + ", ".join(webhooks.EVENTS) + ".",
                errors=[{"pointer": "/events", "detail": "unknown or missing events"}],
            )
        return list(dict.fromkeys(events))

    def _esd_check_owner(self):
        """The endpoints of ``self`` that the caller's grant covers (its reseller, its company);
        Problem not-found for any other."""
        grant = api_grant(self.env)
        for endpoint in self.sudo():
            if endpoint.partner_id != grant.partner_id or endpoint.company_id != grant.company_id:
                raise Problem("not-found")
        return self.sudo()

    def _esd_remove(self, channel):
        """The owner removes endpoints: archived, their pending deliveries dropped."""
        endpoints = self._esd_check_owner()
        endpoints.delivery_ids.filtered(lambda d: d.state == "pending").write(
            {"state": "failed", "last_error": "endpoint removed", "next_attempt_at": False}
        )
        endpoints.write({"active": False})
        for endpoint in endpoints:
            endpoint.message_post(
                body=self.env._(
                    "Removed by %(user)s (%(channel)s).", user=self.env.user.name, channel=channel
                ),
                subtype_xmlid="mail.mt_note",
            )

    def _esd_owner_enable(self, channel):
        endpoints = self._esd_check_owner()
        endpoints._esd_enable(channel)

    def _esd_enable(self, channel=None):
        # Outside the call: Babel, extracting the message, would evaluate an f-string in it.
        suffix = f" ({channel})" if channel else ""
        for endpoint in self.filtered(lambda e: e.state == "disabled"):
            endpoint.write({"state": "enabled", "disabled_reason": False, "failing_since": False})
            endpoint.message_post(
                body=self.env._(
                    "Enabled again by %(user)s%(channel)s.",
                    user=self.env.user.name,
                    channel=suffix,
                ),
                subtype_xmlid="mail.mt_note",
            )
            endpoint.activity_feedback(
                ["microsoft_esd.mail_activity_esd_webhook_disabled"],
                feedback=self.env._("Enabled again."),
            )

    def _esd_disable(self, reason):
        """Stop sending to these endpoints: their pending deliveries fail (Replay sends one
        again once enabled); the ESD managers of their company get an activity."""
        for endpoint in self.filtered(lambda e: e.state == "enabled"):
            endpoint.write({"state": "disabled", "disabled_reason": reason})
            endpoint.delivery_ids.filtered(lambda d: d.state == "pending").write(
                {"state": "failed", "last_error": "endpoint disabled", "next_attempt_at": False}
            )
            note = self.env._(
                "The webhook endpoint %(url)s of %(reseller)s was disabled: %(reason)s. Tell the "
                "reseller; it (or an ESD manager) enables it again once it answers.",
                url=endpoint.url,
                reseller=endpoint.partner_id.display_name,
                reason=reason,
            )
            endpoint.message_post(body=note, subtype_xmlid="mail.mt_note")
            for manager in endpoint._esd_managers():
                endpoint.activity_schedule(
                    "microsoft_esd.mail_activity_esd_webhook_disabled",
                    note=note,
                    user_id=manager.id,
                )

    def _esd_note_failure(self, now):
        """A delivery to this endpoint failed: failing for 24 hours, it is disabled."""
        self.ensure_one()
        first = self.failing_since or now
        if not self.failing_since:
            self.write({"failing_since": now})
        if webhooks.gives_up(first, now):
            self._esd_disable(self.env._("its deliveries failed for 24 hours"))

    def _esd_managers(self):
        """The ESD managers of this endpoint's company (internal, active users)."""
        self.ensure_one()
        managers = self.env.ref(ESD_MANAGER).sudo().users
        return managers.filtered(
            lambda u: u.active and not u.share and self.company_id in u.company_ids
        ) - self.env.ref("base.user_root")

    # ------------------------------------------------------------------ business
    @api.model
    def _esd_allow_loopback(self):
        return bool(self.env["ir.config_parameter"].sudo().get_param(ALLOW_LOOPBACK_PARAM))

    def _esd_secret(self):
        """The secret in clear, for signing (Odoo's own code only)."""
        self.ensure_one()
        return self.env["esd.asset"]._esd_vault().unseal(self.sudo().secret_sealed)

    @api.model
    @tools.ormcache("company_id")
    def _esd_subscriptions(self, company_id):
        """{(reseller id, event): endpoint ids} of the enabled endpoints of a company."""
        subscriptions = {}
        endpoints = (
            self.sudo()
            .with_context(active_test=True)
            .search([("company_id", "=", company_id), ("state", "=", "enabled")])
        )
        for endpoint in endpoints:
            for event in endpoint.events.split():
                subscriptions.setdefault((endpoint.partner_id.id, event), []).append(endpoint.id)
        return {key: tuple(ids) for key, ids in subscriptions.items()}

    def _esd_api_values(self):
        self.ensure_one()
        endpoint = self.sudo()
        return {
            "id": endpoint.id,
            "url": endpoint.url,
            "events": endpoint.events.split(),
            "state": endpoint.state,
            "disabled_reason": endpoint.disabled_reason or None,
            "failing_since": iso(endpoint.failing_since),
            "created_at": iso(endpoint.create_date),
        }
