from . import api, payment, portal, portal_api, website_sale
