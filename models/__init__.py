from . import (
    esd_asset,
    esd_asset_lifecycle,
    esd_asset_provisioning,
    esd_instance,
    esd_partner_account,
    mail_mail,
    product_template,
    res_config_settings,
    res_partner,
    sale_order,
    sale_order_line,
    website,
)
