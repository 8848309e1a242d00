from odoo import http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request

from odoo.addons.sale.controllers.portal import PaymentPortal as SalePaymentPortal
from odoo.addons.website_sale.controllers.payment import PaymentPortal


class EsdPaymentPortal(PaymentPortal):
    """The shop's payment request: its visitor is the order's buyer."""

    def _validate_transaction_for_order(self, transaction, sale_order):
        result = super()._validate_transaction_for_order(transaction, sale_order)
        if sale_order.has_esd_lines:
            sale_order._esd_record_buyer(request.env.user)
        return result


class EsdSalePaymentPortal(SalePaymentPortal):
    """Paying an order from its portal page checks what the shop's payment checks: a cart is
    priced, split and asked whom its licenses are for; a quotation is checked as a confirmation
    in the backend would be. Money is taken only for an order that can be delivered."""

    @http.route()
    def portal_order_transaction(self, order_id, access_token, **kwargs):
        try:
            order_sudo = self._document_check_access("sale.order", order_id, access_token)
        except (AccessError, MissingError):
            order_sudo = None  # sale's own route answers that
        if order_sudo and order_sudo.has_esd_lines and order_sudo.state in ("draft", "sent"):
            try:
                order_sudo._esd_check_before_payment()
            except UserError as exc:
                raise ValidationError(str(exc)) from None
        return super().portal_order_transaction(order_id, access_token, **kwargs)
