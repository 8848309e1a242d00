import contextvars

from odoo import models

# True while a payment confirms the orders it paid (set by code only: a request's context cannot
# set it). Money was taken: such an order confirms whatever happens, and a license that cannot
# be ordered fails with its reason in the provisioning job.
PAID_CONFIRMATION = contextvars.ContextVar("esd_paid_confirmation", default=False)


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    def _check_amount_and_confirm_order(self):
        token = PAID_CONFIRMATION.set(True)
        try:
            return super()._check_amount_and_confirm_order()
        finally:
            PAID_CONFIRMATION.reset(token)
