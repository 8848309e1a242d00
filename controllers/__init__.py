from . import api, portal, portal_api, website_sale
