from odoo import api, models

# What the catalog calls sellable: active at Microsoft, possibly changed since it was priced.
SELLABLE_STATUSES = ("active", "updated")


class ProductProduct(models.Model):
    _inherit = "product.product"

    @api.model
    def _esd_api_sellable(self, company):
        """The ESD products a reseller may order through the API in ``company``: activated for
        sale (Activate for sale), still sold by Microsoft, through an instance of the company."""
        return (
            self.sudo()
            .with_company(company)
            .search(
                [
                    ("is_esd", "=", True),
                    ("sale_ok", "=", True),
                    ("esd_catalog_status", "in", SELLABLE_STATUSES),
                    ("esd_instance_id.company_id", "=", company.id),
                    ("company_id", "in", [False, company.id]),
                ],
                order="id",
            )
        )

    def _esd_api_values(self, pricelist):
        """A product as the API lists it, at ``pricelist``'s price for one license (taxes
        excluded)."""
        self.ensure_one()
        product = self.sudo()
        template = product.product_tmpl_id
        price = pricelist._get_product_price(product, 1.0, currency=pricelist.currency_id)
        return {
            "id": product.id,
            "name": product.name,
            "sku": template.esd_sku or None,
            "cis_product_id": template.esd_product_id or None,
            "returnable": template.esd_returnable,
            "country": template.esd_instance_id.country_id.code or None,
            "price": {"amount": price, "currency": pricelist.currency_id.name},
        }
