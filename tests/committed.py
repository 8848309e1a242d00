"""Tests whose data is committed, run by threads with cursors of their own.

Row locks, commits and rollbacks only happen between transactions: a test of a cron or of two
workers commits its data in real cursors, runs the code in threads of its own (where the crons'
commits are real) and removes its data at the end.
"""

import faulthandler
import tempfile
import threading

from odoo import SUPERUSER_ID, Command, api, sql_db
from odoo.modules.registry import Registry
from odoo.tests import TransactionCase

from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient, Simulator
from odoo.addons.microsoft_esd.models import esd_provisioning_run

from .common import OFFICE


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


class CommittedSimulatorCase(TransactionCase):
    """Committed data on a simulator of its own; code run in threads with real commits."""

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
        # Each test's crons start as in a freshly started server: no batch size learned before.
        esd_provisioning_run.LEARNED_SIZES.clear()
        self.addCleanup(esd_provisioning_run.LEARNED_SIZES.clear)

    def _env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})

    def committed(self, work):
        """``work(env)`` in a cursor of its own, committed; returns its result."""
        with self.registry.cursor() as cr:
            return work(self._env(cr))

    def in_threads(self, work, count=1, timeout=60):
        """``work(env)`` in ``count`` threads at once, each with its own cursor (committed at
        its end, as a cron's is); returns their results, raises the first error."""
        barrier = threading.Barrier(count)
        results, errors = [], []

        def run():
            try:
                with self.registry.cursor() as cr:
                    barrier.wait(timeout=10)
                    results.append(work(self._env(cr)))
            except Exception as exc:  # reported by the test below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=timeout)
        if any(thread.is_alive() for thread in threads):
            faulthandler.dump_traceback()  # where a stuck worker waits, in the test log
        self.assertFalse(any(thread.is_alive() for thread in threads), "a worker is stuck")
        if errors:
            raise errors[0]
        return results

    def run_cron(self, xmlid, woken=False):
        """The cron of ``xmlid`` as Odoo's cron runner runs it (its calls while work remains,
        its commits, its progress), in a thread with a cursor of its own, logging no error;
        returns the cron's failure count afterwards (0: it did not fail). Made due first,
        unless ``woken``: then it runs only if something triggered it (or it fails)."""

        def make_due(env):
            cron = env.ref(xmlid)
            if not woken:
                env.cr.execute(
                    "UPDATE ir_cron SET active = true, "
                    "nextcall = (now() at time zone 'UTC') - interval '1 minute' WHERE id = %s",
                    [cron.id],
                )
            return cron.id

        cron_id = self.committed(make_due)

        def run(env):
            IrCron = self.registry["ir.cron"]
            db = sql_db.db_connect(env.cr.dbname)
            with db.cursor() as cron_cr:
                job = IrCron._acquire_one_job(cron_cr, cron_id)
                if not job:
                    cron_cr.execute(
                        "SELECT active, nextcall, now() at time zone 'UTC' FROM ir_cron "
                        "WHERE id = %s",
                        [cron_id],
                    )
                    self.fail(f"{xmlid} is not ready to run: {cron_cr.fetchall()}")
                IrCron._process_job(db, cron_cr, job)

        # A cron that logs an error tells its operator something went wrong: none here.
        with self.assertNoLogs("odoo", level="ERROR"):
            self.in_threads(run)
        return self.committed(lambda env: env["ir.cron"].browse(cron_id).failure_count)

    def setup_committed_order(self, licenses):
        """A connected instance, Office for sale, a customer and a confirmed order of
        ``licenses`` licenses, committed; returns their ids (removed again after the test)."""
        instance_id, partner_id, (order_id,) = self.setup_committed_orders(licenses)
        return instance_id, partner_id, order_id

    def setup_committed_orders(self, licenses, orders=1, confirm=True):
        """As setup_committed_order, with ``orders`` orders of ``licenses`` licenses each
        (confirmed with ``confirm``); returns (instance id, partner id, order ids)."""

        def setup(env):
            Instance = env["esd.instance"]
            instance = Instance.create(
                {
                    **Instance._esd_values_from_simulator(self.simulator.config_path),
                    "name": "Committed test",
                }
            )
            instance.action_test_connection()
            instance._sync_catalog()
            product = env["product.template"].search(
                [("esd_instance_id", "=", instance.id), ("esd_product_id", "=", OFFICE)]
            )
            product.list_price = 100
            product.action_esd_activate_for_sale()
            partner = env["res.partner"].create(
                {
                    "name": "Committed Customer",
                    "is_company": True,
                    "email": "c@committed.example",
                    "country_id": env.ref("base.us").id,
                }
            )
            sale_orders = env["sale.order"].create(
                [
                    {
                        "partner_id": partner.id,
                        "order_line": [
                            Command.create(
                                {
                                    "product_id": product.product_variant_id.id,
                                    "product_uom_qty": licenses,
                                }
                            )
                        ],
                    }
                    for _order in range(orders)
                ]
            )
            if confirm:
                sale_orders.action_confirm()
            # Small batches (2 x 4), so that several workers get some.
            env["ir.config_parameter"].set_param("microsoft_esd.parallelism", "2")
            return instance.id, partner.id, sale_orders.ids

        ids = self.committed(setup)
        self.addCleanup(self._cleanup, *ids)
        return ids

    def _cleanup(self, instance_id, partner_id, order_ids):
        for order_id in order_ids if isinstance(order_ids, list) else [order_ids]:
            self._cleanup_order(instance_id, order_id)
        with self.registry.cursor() as cr:
            cr.execute("DELETE FROM esd_partner_account WHERE instance_id = %s", [instance_id])
            cr.execute(
                "DELETE FROM product_product WHERE product_tmpl_id IN "
                "(SELECT id FROM product_template WHERE esd_instance_id = %s)",
                [instance_id],
            )
            cr.execute("DELETE FROM product_template WHERE esd_instance_id = %s", [instance_id])
            cr.execute("DELETE FROM esd_catalog_sync_result WHERE instance_id = %s", [instance_id])
            cr.execute("DELETE FROM esd_instance_pace WHERE instance_id = %s", [instance_id])
            cr.execute("DELETE FROM esd_instance WHERE id = %s", [instance_id])
            cr.execute("DELETE FROM res_partner WHERE id = %s", [partner_id])
            cr.execute("DELETE FROM ir_config_parameter WHERE key = 'microsoft_esd.parallelism'")

    def _cleanup_order(self, instance_id, order_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT DISTINCT move_id FROM account_move_line WHERE id IN "
                "(SELECT invoice_line_id FROM esd_asset WHERE sale_order_id = %s "
                "UNION SELECT credit_note_line_id FROM esd_asset WHERE sale_order_id = %s)",
                [order_id, order_id],
            )
            move_ids = [row[0] for row in cr.fetchall() if row[0]] or [0]
            cr.execute(
                "DELETE FROM esd_reconciliation_line WHERE asset_id IN "
                "(SELECT id FROM esd_asset WHERE sale_order_id = %s)",
                [order_id],
            )
            cr.execute("DELETE FROM esd_asset WHERE sale_order_id = %s", [order_id])
            cr.execute(
                "SELECT DISTINCT full_reconcile_id FROM account_move_line WHERE move_id IN %s",
                [tuple(move_ids)],
            )
            full_ids = [row[0] for row in cr.fetchall() if row[0]] or [0]
            cr.execute(
                "DELETE FROM account_partial_reconcile WHERE debit_move_id IN "
                "(SELECT id FROM account_move_line WHERE move_id IN %s) OR credit_move_id IN "
                "(SELECT id FROM account_move_line WHERE move_id IN %s)",
                [tuple(move_ids), tuple(move_ids)],
            )
            cr.execute("DELETE FROM account_move WHERE id IN %s", [tuple(move_ids)])
            cr.execute("DELETE FROM account_full_reconcile WHERE id IN %s", [tuple(full_ids)])
            cr.execute("DELETE FROM sale_order WHERE id = %s", [order_id])
