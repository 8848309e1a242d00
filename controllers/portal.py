from collections import OrderedDict

from odoo import http
from odoo.exceptions import AccessError, MissingError, UserError
from odoo.http import request

from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager

PAGE_SIZE = 20
# The outcomes a license page shows: codes in the URL, texts in the template
# (portal_my_esd_asset). A link cannot make the page say anything else.
OUTCOMES = ("updated", "resent", "cancel_requested", "withdrawn")
# Why an operation was refused: kept in the session of the user who did it, shown once.
SESSION_ERROR = "esd_portal_error"
# The licenses of the last list the user saw, for the previous/next buttons of a license page.
SESSION_HISTORY = "my_esd_history"


class EsdPortal(CustomerPortal):
    """Licenses in the customer portal: a customer sees its own, a reseller those it billed."""

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "esd_asset_count" in counters:
            Asset = request.env["esd.asset"]
            domain = Asset._esd_portal_domain(request.env.user.partner_id)
            values["esd_asset_count"] = (
                Asset.search_count(domain) if Asset.has_access("read") else 0
            )
        return values

    def _esd_filters(self):
        return OrderedDict(
            all={"label": request.env._("All"), "domain": []},
            active={"label": request.env._("Active"), "domain": [("state", "=", "active")]},
            cancelled={
                "label": request.env._("Cancelled"),
                "domain": [("state", "=", "cancelled")],
            },
        )

    def _esd_sortings(self):
        return {
            "date": {"label": request.env._("Newest"), "order": "purchase_date desc, id desc"},
            "name": {"label": request.env._("Reference"), "order": "name"},
            "product": {"label": request.env._("Product"), "order": "product_id, id desc"},
        }

    def _prepare_esd_portal_rendering_values(
        self, page=1, sortby="date", filterby="all", search=None, customer=None, **kwargs
    ):
        """The values of the license list: the user's licenses (a reseller's grouped by end
        customer, or those of one), filtered, searched, sorted and paged."""
        Asset = request.env["esd.asset"]
        commercial = request.env.user.partner_id.commercial_partner_id
        filters, sortings = self._esd_filters(), self._esd_sortings()
        filterby = filterby if filterby in filters else "all"
        sortby = sortby if sortby in sortings else "date"
        # Which licenses the user may see is decided with its own rights (record rules); the
        # search then runs within those, as sudo, since it looks into products and partners.
        visible = Asset._search(Asset._esd_portal_domain(commercial) + filters[filterby]["domain"])
        Asset_sudo = Asset.sudo()
        domain = [("id", "in", visible)]
        if search:
            domain += [
                "|",
                "|",
                ("name", "ilike", search),
                ("product_id.name", "ilike", search),
                ("customer_id.name", "ilike", search),
            ]
        # A reseller sees its end customers: group by customer, or pick one. Grouped in SQL:
        # reading the customer of every license billed to a large reseller would cost a query
        # per 1,000 licenses.
        billed = Asset_sudo._read_group(
            [("billing_partner_id", "=", commercial.id)], ["customer_id"]
        )
        end_customers = Asset_sudo.customer_id.browse([partner.id for (partner,) in billed])
        is_reseller = bool(end_customers - commercial)
        selected = None
        if customer and str(customer).isdigit():
            selected = end_customers.filtered(lambda p: p.id == int(customer))
            domain += [("customer_id", "=", selected.id or -1)]
        url_args = {"sortby": sortby, "filterby": filterby, "search": search, "customer": customer}
        pager = portal_pager(
            url="/my/esd",
            url_args=url_args,
            total=Asset_sudo.search_count(domain),
            page=page,
            step=PAGE_SIZE,
        )
        order = sortings[sortby]["order"]
        if is_reseller and not selected:
            order = "customer_id, " + order
        assets_sudo = Asset_sudo.search(
            domain, order=order, limit=PAGE_SIZE, offset=pager["offset"]
        )
        groups = (
            [
                (partner, assets_sudo.filtered(lambda a, p=partner: a.customer_id == p))
                for partner in assets_sudo.customer_id
            ]
            if is_reseller and not selected
            else [(selected, assets_sudo)]
        )
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "esd_assets",
                "default_url": "/my/esd",
                "pager": pager,
                "groups": groups,
                "assets": assets_sudo,
                "is_reseller": is_reseller,
                "end_customers": end_customers,
                "selected_customer": selected,
                "searchbar_sortings": sortings,
                "sortby": sortby,
                "searchbar_filters": filters,
                "filterby": filterby,
                "searchbar_inputs": {
                    "all": {"input": "all", "label": request.env._("Search licenses")}
                },
                "search_in": "all",
                "search": search,
            }
        )
        return values

    @http.route(["/my/esd", "/my/esd/page/<int:page>"], type="http", auth="user", website=True)
    def portal_my_esd_assets(self, **kwargs):
        values = self._prepare_esd_portal_rendering_values(**kwargs)
        request.session[SESSION_HISTORY] = values["assets"].ids[:100]
        return request.render("microsoft_esd.portal_my_esd_assets", values)

    def _esd_asset_or_404(self, asset_id, access_token=None):
        """The license, as sudo for the requesting user, if that user may read it or holds its
        share link; else 404.

        ``_document_check_access`` returns the record as the superuser (OdooBot): the license is
        put back under the requesting user, who alone decides whether the key shows.
        """
        try:
            asset_sudo = self._document_check_access("esd.asset", asset_id, access_token)
        except (AccessError, MissingError):
            raise request.not_found() from None
        return asset_sudo.with_env(request.env(su=True))

    def _esd_owned_or_404(self, asset_id):
        """The license (as sudo) if the logged-in user owns it; else 404.

        Operations need an owner: a share link shows the license, it does not act on it.
        """
        asset_sudo = self._esd_asset_or_404(asset_id)
        if not asset_sudo._esd_owned():
            raise request.not_found()
        return asset_sudo

    @http.route(["/my/esd/<int:asset_id>"], type="http", auth="public", website=True)
    def portal_my_esd_asset(self, asset_id, access_token=None, outcome=None, **kw):
        asset_sudo = self._esd_asset_or_404(asset_id, access_token)
        error = request.session.pop(SESSION_ERROR, None) if outcome == "error" else None
        viewer = request.env.user
        values = self._get_page_view_values(
            asset_sudo, access_token, {"page_name": "esd_asset"}, SESSION_HISTORY, False, **kw
        )
        values.update(
            {
                "asset": asset_sudo,
                # Decided for the requesting user: the record is sudo, its user is not.
                "key_visible": bool(asset_sudo._esd_owned()),
                # What was paid: for the billed company, never its end customer.
                "show_price": not viewer._is_public()
                and viewer.partner_id.commercial_partner_id == asset_sudo.billing_partner_id,
                "is_public": viewer._is_public(),
                "outcome": outcome if outcome in OUTCOMES else None,
                "error": error,
            }
        )
        return request.render("microsoft_esd.portal_my_esd_asset", values)

    def _esd_action(self, asset_id, action, outcome):
        """Run a portal operation on an owned license; back to its page with the outcome.

        A refusal is not rolled back wholesale: the operations keep what must stay (the
        once-a-minute stamp) and undo the rest themselves."""
        asset_sudo = self._esd_owned_or_404(asset_id)
        url = f"/my/esd/{asset_sudo.id}"
        try:
            action(asset_sudo)
        except UserError as exc:
            request.session[SESSION_ERROR] = str(exc)
            return request.redirect(f"{url}?outcome=error")
        return request.redirect(f"{url}?outcome={outcome}")

    @http.route(
        "/my/esd/<int:asset_id>/update", type="http", auth="user", methods=["POST"], website=True
    )
    def portal_esd_update(self, asset_id, **kw):
        return self._esd_action(
            asset_id,
            lambda asset: asset._esd_portal_update_status(),
            "updated",
        )

    @http.route(
        "/my/esd/<int:asset_id>/resend", type="http", auth="user", methods=["POST"], website=True
    )
    def portal_esd_resend(self, asset_id, **kw):
        return self._esd_action(
            asset_id,
            lambda asset: asset._esd_portal_resend(),
            "resent",
        )

    @http.route(
        "/my/esd/<int:asset_id>/cancel", type="http", auth="user", methods=["POST"], website=True
    )
    def portal_esd_cancel(self, asset_id, comment=None, **kw):
        partner = request.env.user.partner_id
        return self._esd_action(
            asset_id,
            lambda asset: asset._esd_request_cancellation((comment or "").strip()[:2000], partner),
            "cancel_requested",
        )

    @http.route(
        "/my/esd/<int:asset_id>/withdraw", type="http", auth="user", methods=["POST"], website=True
    )
    def portal_esd_withdraw(self, asset_id, **kw):
        return self._esd_action(
            asset_id,
            lambda asset: asset._esd_withdraw_cancellation(),
            "withdrawn",
        )


class EsdOrderLicenses(CustomerPortal):
    """The licenses of an order, refreshed on its confirmation and portal pages."""

    @http.route("/my/orders/<int:order_id>/esd_licenses", type="json", auth="public", website=True)
    def portal_order_esd_licenses(self, order_id, access_token=None):
        try:
            order_sudo = self._document_check_access("sale.order", order_id, access_token)
        except (AccessError, MissingError):
            raise request.not_found() from None
        order_sudo = order_sudo.with_env(request.env(su=True))
        html = request.env["ir.qweb"]._render(
            "microsoft_esd.order_licenses_rows", {"order": order_sudo}
        )
        return {
            "html": html,
            "done": not order_sudo._esd_licenses_pending(),
            "delivered": order_sudo._esd_delivered_count(),
        }
