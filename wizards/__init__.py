from . import (
    base_partner_merge,
    esd_catalog_sync_result,
    esd_license_import,
    esd_partner_sync_wizard,
    esd_reconciliation,
    esd_resend_to,
    esd_uninstall,
    portal_wizard_user,
)
