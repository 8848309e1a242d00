from . import portal, website_sale
