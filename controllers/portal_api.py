from odoo import http
from odoo.exceptions import AccessError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal

from ..microsoft_esd import webhooks
from ..microsoft_esd.api import PREFIX, Problem
from ..models.esd_api_access import api_env

DELIVERIES_SHOWN = 10


class EsdPortalApi(CustomerPortal):
    """The portal's API page, for a reseller's API users: their API keys (Odoo's own), the
    API's address and contract, their webhook endpoints and each one's delivery log."""

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "esd_api_user" in counters:
            values["esd_api_user"] = int(self._esd_api_env() is not None)
        return values

    def _esd_api_env(self):
        """The API's environment for the logged-in user, or None if it is not an API user."""
        try:
            return api_env(request.env)[0]
        except AccessError:
            return None

    def _esd_api_page(self, secret=None, error=None, form=None):
        env = self._esd_api_env()
        if env is None:
            raise request.not_found()
        endpoints = env["esd.webhook.endpoint"].search([], order="id desc")
        base_url = request.env["ir.config_parameter"].sudo().get_param("web.base.url")
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "esd_api",
                "api_url": f"{base_url}{PREFIX}",
                "endpoints": endpoints.sudo(),
                "deliveries": {
                    endpoint.id: endpoint.sudo().delivery_ids[:DELIVERIES_SHOWN]
                    for endpoint in endpoints
                },
                "events": webhooks.EVENTS,
                "allow_api_keys": bool(
                    request.env["ir.config_parameter"].sudo().get_param("portal.allow_api_keys")
                ),
                "secret": secret,
                "error": error,
                "form": form or {},
            }
        )
        return request.render("microsoft_esd.portal_my_esd_api", values)

    @http.route("/my/esd/api", type="http", auth="user", website=True)
    def portal_esd_api(self, **kw):
        return self._esd_api_page()

    @http.route("/my/esd/api/webhooks", type="http", auth="user", methods=["POST"], website=True)
    def portal_esd_api_register(self, url=None, **post):
        env = self._esd_api_env()
        if env is None:
            raise request.not_found()
        events = [event for event in webhooks.EVENTS if post.get(f"event_{event}")]
        try:
            _endpoint, secret = env["esd.webhook.endpoint"]._esd_register(
                url, events, request.env._("portal")
            )
        except Problem as exc:  # refused before anything was written
            return self._esd_api_page(error=exc.detail or str(exc), form={"url": url})
        return self._esd_api_page(secret=secret)

    def _esd_endpoint_action(self, endpoint_id, action):
        env = self._esd_api_env()
        if env is None:
            raise request.not_found()
        endpoint = env["esd.webhook.endpoint"].search([("id", "=", endpoint_id)])
        if not endpoint:
            raise request.not_found()
        try:
            action(endpoint)
        except Problem:
            raise request.not_found() from None
        return request.redirect("/my/esd/api")

    @http.route(
        "/my/esd/api/webhooks/<int:endpoint_id>/remove",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_esd_api_remove(self, endpoint_id, **kw):
        return self._esd_endpoint_action(
            endpoint_id, lambda endpoint: endpoint._esd_remove(request.env._("portal"))
        )

    @http.route(
        "/my/esd/api/webhooks/<int:endpoint_id>/enable",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_esd_api_enable(self, endpoint_id, **kw):
        return self._esd_endpoint_action(
            endpoint_id, lambda endpoint: endpoint._esd_owner_enable(request.env._("portal"))
        )

    @http.route(
        "/my/esd/api/deliveries/<int:delivery_id>/replay",
        type="http",
        auth="user",
        methods=["POST"],
        website=True,
    )
    def portal_esd_api_replay(self, delivery_id, **kw):
        env = self._esd_api_env()
        if env is None:
            raise request.not_found()
        delivery = env["esd.webhook.delivery"].search([("id", "=", delivery_id)])
        if not delivery:
            raise request.not_found()
        try:
            delivery._esd_owner_replay()
        except Problem:
            raise request.not_found() from None
        return request.redirect("/my/esd/api")
