"""``make bench`` runs its shell benchmarks in one database, one after the other: here each one
runs the same way (in order, with real commits, each beside a simulator of its own) at a tiny
size, so that a benchmark that cannot run fails a test. What they made is removed afterwards."""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

from odoo.tests import tagged

from odoo.addons.microsoft_esd.microsoft_esd.simulator import Simulator

from .committed import CommittedSimulatorCase

BENCH = Path(__file__).resolve().parent.parent / "bench"
# The tables the benchmarks write, in the order their rows can be removed.
TABLES = (
    "esd_mail_grant",
    "mail_mail",
    "mail_activity",
    "mail_message",
    "esd_reconciliation_line",
    "esd_grant",
    "esd_asset",
    "account_partial_reconcile",
    "account_full_reconcile",
    "account_move",
    "sale_order",
    "esd_partner_account",
    "product_product",
    "product_template",
    "esd_catalog_sync_result",
    "esd_instance_pace",
    "esd_instance",
    "res_partner",
    "ir_cron_trigger",
)
PARAMETERS = ("microsoft_esd.parallelism",)


@tagged("post_install", "-at_install")
class TestBenchmarksRun(CommittedSimulatorCase):
    def test_the_shell_benchmarks_run_one_after_the_other_in_one_database(self):
        self._remove_afterwards()
        catalog = self._run("bench_catalog_sync.py", extra_products=7)
        self.assertEqual(catalog["syncs"][1]["new"], 0)
        provisioning = self._run(
            "bench_provisioning.py", ESD_BENCH_LICENSES="4", ESD_BENCH_LATENCY_MS="10"
        )
        for run in provisioning["runs"]:
            self.assertEqual(run["delivered"], run["licenses"])
            self.assertEqual(run["invoice_lines"], run["licenses"])
            self.assertGreater(run["odoo_alone_s"], 0)
            # Each figure is rounded to the hundredth on its own: the sum may differ by one.
            self.assertAlmostEqual(
                run["network_plus_odoo_s"], run["bound_s"] + run["odoo_alone_s"], delta=0.011
            )
        refresh = self._run("bench_refresh.py", ESD_BENCH_TOTAL="12", ESD_BENCH_CHANGED="3")
        self.assertEqual(
            refresh["runs"][-1]["statuses_after"], {"redeemed": 2, "return_accepted": 1}
        )

    def _run(self, script, extra_products=0, **environ):
        """bench/<script> as ``make bench`` runs it in odoo shell (its ``env``, committed),
        beside a simulator of its own; its JSON report."""
        state = tempfile.TemporaryDirectory(prefix="esd-bench-sim-")
        self.addCleanup(state.cleanup)
        simulator = Simulator(state.name, extra_products=extra_products).start()
        self.addCleanup(simulator.stop)
        saved = {key: os.environ.get(key) for key in [*environ, "ESD_BENCH_CONFIG"]}
        os.environ.update(environ, ESD_BENCH_CONFIG=str(simulator.config_path))
        try:
            path = BENCH / script
            code = compile(path.read_text(), str(path), "exec")
            out = io.StringIO()

            def run(env):
                with contextlib.redirect_stdout(out):
                    exec(code, {"env": env, "__name__": "__main__", "__file__": str(path)})

            self.in_threads(run, timeout=300)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        line = next(x for x in out.getvalue().splitlines() if x.startswith("ESD-BENCH "))
        return json.loads(line.removeprefix("ESD-BENCH "))

    def _remove_afterwards(self):
        """The rows the benchmarks commit are removed after the test (ids above today's)."""

        def high_water(env):
            marks = {}
            for table in TABLES:
                env.cr.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
                marks[table] = env.cr.fetchone()[0]
            env.cr.execute(
                "SELECT key, value FROM ir_config_parameter WHERE key IN %s", [PARAMETERS]
            )
            return marks, dict(env.cr.fetchall())

        marks, parameters = self.committed(high_water)

        def remove():
            with self.registry.cursor() as cr:
                for table in TABLES:
                    cr.execute(f"DELETE FROM {table} WHERE id > %s", [marks[table]])
                for key in PARAMETERS:
                    cr.execute("DELETE FROM ir_config_parameter WHERE key = %s", [key])
                    if key in parameters:
                        cr.execute(
                            "INSERT INTO ir_config_parameter (key, value) VALUES (%s, %s)",
                            [key, parameters[key]],
                        )

        self.addCleanup(remove)
