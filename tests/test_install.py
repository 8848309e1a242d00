from odoo.modules import get_manifest
from odoo.tests import TransactionCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestInstall(TransactionCase):
    """The addon installs with its security groups and its Sales menu."""

    def test_module_installed(self):
        module = self.env["ir.module.module"].search([("name", "=", "microsoft_esd")])
        self.assertEqual(module.state, "installed")
        self.assertEqual(module.latest_version, get_manifest("microsoft_esd")["version"])

    def test_manager_implies_user_implies_salesman(self):
        manager = self.env.ref("microsoft_esd.group_esd_manager")
        user_group = self.env.ref("microsoft_esd.group_esd_user")
        salesman = self.env.ref("sales_team.group_sale_salesman")
        self.assertIn(user_group, manager.implied_ids)
        self.assertIn(salesman, user_group.trans_implied_ids)
        self.assertIn(self.env.ref("base.user_admin"), manager.users)

    def test_menus_restricted_to_esd_groups(self):
        root = self.env.ref("microsoft_esd.menu_esd_root")
        config = self.env.ref("microsoft_esd.menu_esd_configuration")
        self.assertEqual(root.parent_id, self.env.ref("sale.sale_menu_root"))
        self.assertEqual(root.groups_id, self.env.ref("microsoft_esd.group_esd_user"))
        self.assertEqual(config.groups_id, self.env.ref("microsoft_esd.group_esd_manager"))
        salesman = new_test_user(self.env, "plain_s", groups="sales_team.group_sale_salesman")
        self.assertFalse(salesman.has_group("microsoft_esd.group_esd_user"))
