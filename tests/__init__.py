from . import (
    test_access_matrix,
    test_adversary,
    test_concurrency,
    test_esd_instance,
    test_i18n,
    test_install,
    test_lifecycle,
    test_money_paths,
    test_portal,
    test_provisioning,
    test_security,
    test_storefront,
)
