from . import esd_instance, product_template, res_config_settings
