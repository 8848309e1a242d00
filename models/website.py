from odoo import models
from odoo.http import request
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)


class Website(models.Model):
    _inherit = "website"

    def _get_checkout_step_list(self):
        """A reseller's cart of licenses has one more step before paying: whom they are for.

        Decided from the cart (its customer and its lines), as the routes decide it."""
        steps = super()._get_checkout_step_list()
        order = self.sale_get_order() if request and getattr(request, "website", None) else None
        if not order or not order._esd_is_reseller_cart():
            return steps
        payment = next(i for i, step in enumerate(steps) if "website_sale.payment" in step[0])
        steps.insert(
            payment,
            (
                ["microsoft_esd.checkout_esd_customer"],
                {
                    "name": _lt("Licenses for"),
                    "current_href": "/shop/esd_customer",
                    "main_button": _lt("Continue to payment"),
                    "main_button_href": "/shop/payment",
                    "back_button": _lt("Back to delivery"),
                    "back_button_href": "/shop/checkout",
                },
            ),
        )
        steps[payment + 1][1].update(
            back_button=_lt("Back: whom the licenses are for"),
            back_button_href="/shop/esd_customer",
        )
        return steps
