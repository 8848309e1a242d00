import importlib.util

from odoo.modules import get_manifest, get_module_path
from odoo.tests import TransactionCase, new_test_user, tagged

from odoo.addons.microsoft_esd.models.esd_asset_provisioning import PROVISION_CRONS

SHORT_CRONS = ("microsoft_esd.ir_cron_esd_welcome", "microsoft_esd.ir_cron_esd_webhooks")


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


@tagged("post_install", "-at_install")
class TestCronOrder(TransactionCase):
    """Odoo's cron runner takes the jobs ready when it looks, by priority then id, one after
    the other: the license emails and the reseller webhooks come before the provisioning calls
    (each up to a window of 10 s) when they are ready together."""

    def _crons(self, xmlids):
        return self.env["ir.cron"].browse([self.env.ref(xmlid).id for xmlid in xmlids])

    def _ready_order(self):
        crons = self._crons(SHORT_CRONS + PROVISION_CRONS)
        crons.write({"active": True, "nextcall": "2000-01-01 00:00:00", "failure_count": 0})
        crons.flush_recordset()
        jobs = type(self.env["ir.cron"])._get_all_ready_jobs(self.env.cr)
        return [job["id"] for job in jobs if job["id"] in crons.ids]

    def test_emails_and_webhooks_are_run_before_the_provisioning_calls(self):
        ready = self._ready_order()
        short = self._crons(SHORT_CRONS).ids
        self.assertEqual(len(ready), 2 + len(PROVISION_CRONS))
        self.assertEqual(set(ready[:2]), set(short), "a ready email or webhook job comes first")

    def test_an_upgrade_puts_them_first_unless_an_operator_chose_a_priority(self):
        welcome, webhooks = self._crons(SHORT_CRONS)
        welcome.priority, webhooks.priority = 5, 7  # 18.0.1.7.6's, and an operator's choice
        path = get_module_path("microsoft_esd") + "/migrations/18.0.1.7.7/post-cron-priority.py"
        spec = importlib.util.spec_from_file_location("esd_migration_cron_priority", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        self.env.flush_all()
        migration.migrate(self.env.cr, "18.0.1.7.6")
        self.env.invalidate_all()
        self.assertEqual((welcome.priority, webhooks.priority), (4, 7))
