from . import test_esd_instance, test_install
