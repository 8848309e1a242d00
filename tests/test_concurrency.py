import faulthandler
import tempfile
import threading

from odoo import SUPERUSER_ID, Command, api
from odoo.modules.registry import Registry
from odoo.tests import TransactionCase, tagged

from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient, Simulator

LICENSES = 24


def _lock_free_for_other_threads(lock):
    """True when a thread other than this one could take ``lock`` (an RLock is re-entrant)."""
    result = []

    def probe():
        if lock.acquire(blocking=False):
            lock.release()
            result.append(True)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return bool(result)


@tagged("post_install", "-at_install")
class TestConcurrentWorkers(TransactionCase):
    """Two workers (threads with their own cursors) run the provisioning job at once.

    Row locks only work between transactions, so this test commits its data in real cursors and
    removes it again at the end.
    """

    def setUp(self):
        super().setUp()
        # Odoo's own runner runs the tests while holding the registry lock, so no other thread can
        # build an Environment there; pytest-odoo (make test runs both) does not hold it.
        if not _lock_free_for_other_threads(Registry._lock):
            self.skipTest("the registry lock is held by the test runner: run through pytest-odoo")
        self.sim_dir = tempfile.TemporaryDirectory(prefix="esd-sim-")
        self.addCleanup(self.sim_dir.cleanup)
        self.simulator = Simulator(self.sim_dir.name).start()
        self.addCleanup(self.simulator.stop)
        self.admin = AdminClient(InstanceConfig.from_file(self.simulator.config_path))

    def _env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})

    def _setup_committed_order(self):
        with self.registry.cursor() as cr:
            env = self._env(cr)
            Instance = env["esd.instance"]
            instance = Instance.create(
                {
                    **Instance._esd_values_from_simulator(self.simulator.config_path),
                    "name": "Concurrency test",
                }
            )
            instance.action_test_connection()
            instance._sync_catalog()
            product = env["product.template"].search(
                [("esd_instance_id", "=", instance.id), ("esd_product_id", "=", "EP2-06606:en-US")]
            )
            product.list_price = 100
            product.action_esd_activate_for_sale()
            partner = env["res.partner"].create(
                {
                    "name": "Concurrency Customer",
                    "is_company": True,
                    "email": "c@concurrency.example",
                    "country_id": env.ref("base.us").id,
                }
            )
            order = env["sale.order"].create(
                {
                    "partner_id": partner.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": product.product_variant_id.id,
                                "product_uom_qty": LICENSES,
                            }
                        )
                    ],
                }
            )
            order.action_confirm()
            # Small batches (2 x 4), so that both workers get some.
            env["ir.config_parameter"].set_param("microsoft_esd.parallelism", "2")
            return instance.id, partner.id, order.id

    def _cleanup(self, instance_id, partner_id, order_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT DISTINCT move_id FROM account_move_line WHERE id IN "
                "(SELECT invoice_line_id FROM esd_asset WHERE sale_order_id = %s)",
                [order_id],
            )
            move_ids = [row[0] for row in cr.fetchall()] or [0]
            cr.execute("DELETE FROM esd_asset WHERE sale_order_id = %s", [order_id])
            cr.execute("DELETE FROM account_move WHERE id IN %s", [tuple(move_ids)])
            cr.execute("DELETE FROM sale_order WHERE id = %s", [order_id])
            cr.execute("DELETE FROM esd_partner_account WHERE instance_id = %s", [instance_id])
            cr.execute(
                "DELETE FROM product_product WHERE product_tmpl_id IN "
                "(SELECT id FROM product_template WHERE esd_instance_id = %s)",
                [instance_id],
            )
            cr.execute("DELETE FROM product_template WHERE esd_instance_id = %s", [instance_id])
            cr.execute("DELETE FROM esd_instance WHERE id = %s", [instance_id])
            cr.execute("DELETE FROM res_partner WHERE id = %s", [partner_id])
            cr.execute("DELETE FROM ir_config_parameter WHERE key = 'microsoft_esd.parallelism'")

    def test_claim_survives_an_update_committed_after_its_snapshot(self):
        instance_id, partner_id, order_id = self._setup_committed_order()
        self.addCleanup(self._cleanup, instance_id, partner_id, order_id)
        with self.registry.cursor() as worker_b, self.registry.cursor() as worker_a:
            env_b = self._env(worker_b)
            worker_b.execute("SELECT count(*) FROM esd_asset")  # B's snapshot starts here
            worker_a.execute(
                "UPDATE esd_asset SET sync_attempts = 0 WHERE sale_order_id = %s", [order_id]
            )
            worker_a.commit()  # A changed every pending row after B's snapshot
            claimed = env_b["esd.asset"]._esd_claim(8, commit=True)
            self.assertEqual(len(claimed), 8)
            self.assertEqual(set(claimed.mapped("sale_order_id").ids), {order_id})

    def test_two_workers_provision_each_license_exactly_once(self):
        instance_id, partner_id, order_id = self._setup_committed_order()
        self.addCleanup(self._cleanup, instance_id, partner_id, order_id)
        self.admin.faults(latency_ms=20, paths="orders")
        before = self.admin.stats()
        barrier = threading.Barrier(2)
        processed, errors = [], []

        def worker():
            try:
                with self.registry.cursor() as cr:
                    env = self._env(cr)
                    barrier.wait(timeout=10)
                    processed.append(env["esd.asset"]._esd_provision_pending(commit=True))
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        if any(thread.is_alive() for thread in threads):
            faulthandler.dump_traceback()  # where a stuck worker waits, in the test log
        self.assertFalse(any(thread.is_alive() for thread in threads), "a worker is stuck")
        self.assertEqual(errors, [])
        self.assertEqual(sum(processed), LICENSES)  # every license claimed by one worker only
        self.assertTrue(all(processed), "both workers took part")
        after = self.admin.stats()
        self.assertEqual(after["licenses"] - before["licenses"], LICENSES)
        with self.registry.cursor() as cr:
            # A worker that found the order locked by the other one defers its invoice to the
            # cron's next run, 10 s later (_esd_invoice_later): run it as the cron runner would.
            self._env(cr)["sale.order"]._esd_invoice_ready(commit=True)
        with self.registry.cursor() as cr:
            self._env(cr)["esd.asset"]._esd_send_pending_welcome(commit=True)
        with self.registry.cursor() as cr:
            env = self._env(cr)
            assets = env["sale.order"].browse(order_id).esd_asset_ids
            self.assertEqual(set(assets.mapped("sync_status")), {"synchronized"})
            self.assertEqual(len({a._esd_secrets()[a.id][0] for a in assets}), LICENSES)
            for asset in assets:
                mails = env["mail.mail"].search([("subject", "like", f"({asset.name})")])
                self.assertEqual(len(mails), 1, asset.name)
            self.assertEqual(len(assets.invoice_id), 1)
            self.assertEqual(len(assets.invoice_id.invoice_line_ids), LICENSES)
