from . import payment, portal, website_sale
