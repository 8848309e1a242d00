from . import esd_catalog_sync_result
