from odoo.http import request

from odoo.addons.website_sale.controllers.payment import PaymentPortal


class EsdPaymentPortal(PaymentPortal):
    """The shop's payment request: its visitor is the order's buyer."""

    def _validate_transaction_for_order(self, transaction, sale_order):
        super()._validate_transaction_for_order(transaction, sale_order)
        if sale_order.has_esd_lines:
            sale_order._esd_record_buyer(request.env.user)
