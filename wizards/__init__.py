from . import (
    esd_catalog_sync_result,
    esd_license_import,
    esd_partner_sync_wizard,
    esd_reconciliation,
    esd_uninstall,
)
