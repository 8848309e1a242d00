"""Benchmark: one order of N licenses, from confirmation to the posted invoice.

Run through ``make bench`` (inside ``odoo shell`` on a throw-away database; the simulator's
instance.json in ESD_BENCH_CONFIG, its latency set to ESD_BENCH_LATENCY_MS on orders). Prints one
JSON report: wall time against the bound N x latency / parallelism, SQL queries per license, the
CPU of this Odoo process and of its PostgreSQL backend per license, the same per stage
(confirmation, provisioning batches, invoicing, the rest of the cron calls), and the peak resident
memory of this Odoo process (VmHWM, after both orders; bound 512 MiB).

ESD_BENCH_PROFILE=/tmp/prov.prof writes a cProfile of each run's path from confirmation to the
posted invoice to /tmp/prov.prof.<licenses> (read it with ``python -m pstats``);
ESD_BENCH_PYSPY=/tmp/prov.spy samples the same path with py-spy (``pip install py-spy`` in .venv;
it needs ptrace) into /tmp/prov.spy.<licenses>, collapsed stacks of every thread.
"""
# pylint: disable=print-used  # a benchmark: what it prints is its report

import contextlib
import cProfile
import json
import os
import signal
import subprocess
import sys
import time

import odoo
from odoo import Command

from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient
from odoo.addons.microsoft_esd.models.esd_provisioning_run import ProvisioningRun
from odoo.addons.microsoft_esd.tests.common import connected_instance, office_for_sale

licenses = int(os.environ.get("ESD_BENCH_LICENSES", "200"))
latency_ms = int(os.environ.get("ESD_BENCH_LATENCY_MS", "100"))
config_path = os.environ["ESD_BENCH_CONFIG"]
admin = AdminClient(InstanceConfig.from_file(config_path))

# The set-up the Odoo tests share: the instance on the simulator, Office at 100 for sale.
instance = connected_instance(env, config_path)
product = office_for_sale(env, 100, instance)
partner = env["res.partner"].create(
    {
        "name": "Bench Customer",
        "is_company": True,
        "email": "b@bench.example",
        "country_id": env.ref("base.us").id,
    }
)
# The same work without the addon: a service invoiced on delivered quantities, at the same
# price and taxes as the license.
service = env["product.product"].create(
    {
        "name": "Bench Service (Odoo alone)",
        "type": "service",
        "invoice_policy": "delivery",
        "list_price": 100,
        "taxes_id": [Command.set(product.taxes_id.ids)],
    }
)
parallelism = env["esd.asset"]._esd_parallelism()
env.cr.commit()
env.cr.execute("SELECT pg_backend_pid()")
backend_stat = f"/proc/{env.cr.fetchone()[0]}/stat"
TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu():
    """CPU seconds of this process's PostgreSQL backend (same machine), or 0 if unreadable."""
    try:
        with open(backend_stat) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (OSError, IndexError, ValueError):
        return 0.0


class Stages:
    """Queries, CPU (this process, all threads; its PostgreSQL backend) and wall time per stage.

    A stage nested in another is taken out of the outer one: each figure is counted once."""

    def __init__(self):
        self.totals = {}
        self.stack = []

    def _now(self):
        return [odoo.sql_db.sql_counter, time.process_time(), backend_cpu(), time.perf_counter()]

    @contextlib.contextmanager
    def __call__(self, name):
        start = self._now()
        self.stack.append([0, 0.0, 0.0, 0.0])  # what nested stages used
        try:
            yield
        finally:
            used = [b - a for a, b in zip(start, self._now(), strict=True)]
            nested = self.stack.pop()
            if self.stack:
                self.stack[-1] = [t + u for t, u in zip(self.stack[-1], used, strict=True)]
            total = self.totals.setdefault(name, [0, 0, 0.0, 0.0, 0.0])
            total[0] += 1
            for i, value in enumerate(used):
                total[i + 1] += value - nested[i]

    def report(self, count):
        return {
            name: {
                "calls": calls,
                "queries_per_license": round(queries / count, 2),
                "cpu_ms_per_license": round(cpu * 1000 / count, 2),
                "pg_cpu_ms_per_license": round(pg * 1000 / count, 2),
                "wall_s": round(wall, 2),
            }
            for name, (calls, queries, cpu, pg, wall) in self.totals.items()
        }


STAGES = [Stages()]  # the current run's
PATCHED = []  # (owner, method, original): put back at the end (a test runs this in its process)


def staged(owner, method, name):
    """Count each call of ``owner.method`` (a model's class or a module) as stage ``name``: the
    bench's own instrumentation, the call itself is unchanged."""
    original = getattr(owner, method)

    def counted(*args, **kwargs):
        with STAGES[0](name):
            return original(*args, **kwargs)

    PATCHED.append((owner, method, original))
    setattr(owner, method, counted)


def unstage():
    while PATCHED:
        owner, method, original = PATCHED.pop()
        setattr(owner, method, original)


# Stages nest: a batch's start holds its claim, the CIS accounts and the submission of its
# orders; its answers are recorded as they arrive (the HTTP runs in the pool's threads, its CPU
# counted in the stage that waits for it), then the batch is committed and its orders invoiced.
Run = ProvisioningRun
staged(Run, "_start", "batches: claim, accounts, submit")
staged(type(env["esd.asset"]), "_esd_sync_accounts", "batches: CIS accounts")
staged(Run, "_finish", "batches: record the answers as they come (HTTP waits), commit")
staged(type(env["esd.asset"]), "_esd_record_one", "batches: record an answer")
staged(Run, "_invoice", "invoicing: a batch's orders")
staged(type(env["sale.order"]), "_esd_invoice_ready", "invoicing: find the orders, the rest")
staged(type(env["sale.order"]), "_create_invoices", "invoicing: create the invoice")
staged(type(env["account.move"]), "action_post", "invoicing: post the invoice")


def odoo_alone(count):
    """What Odoo alone costs for the same work, without the addon's code: an order of
    ``count`` lines of one service (invoiced on delivered quantities), confirmed, each line's
    delivered quantity set, invoiced and posted; its wall time."""
    started = time.perf_counter()
    order = env["sale.order"].create(
        {
            "partner_id": partner.id,
            "order_line": [
                Command.create({"product_id": service.id, "product_uom_qty": 1})
                for _line in range(count)
            ],
        }
    )
    order.action_confirm()
    order.order_line.write({"qty_delivered": 1})
    invoice = order._create_invoices()
    invoice.action_post()
    env.cr.commit()
    wall = time.perf_counter() - started
    assert len(invoice.invoice_line_ids) == count and invoice.state == "posted"
    return wall


def run(count):
    order = env["sale.order"].create(
        {
            "partner_id": partner.id,
            "order_line": [
                Command.create(
                    {"product_id": product.product_variant_id.id, "product_uom_qty": count}
                )
            ],
        }
    )
    env.cr.commit()
    admin.faults(latency_ms=latency_ms, paths="orders")
    stages = STAGES[0] = Stages()
    profile = os.environ.get("ESD_BENCH_PROFILE")
    profiler = cProfile.Profile() if profile else None
    Asset = env["esd.asset"]
    queries = odoo.sql_db.sql_counter
    cpu, pg_cpu = time.process_time(), backend_cpu()
    started = time.perf_counter()
    spy = None
    if os.environ.get("ESD_BENCH_PYSPY"):
        spy = subprocess.Popen(
            [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid",
             str(os.getpid()), "--rate", "250", "--threads", "--nonblocking", "--format", "raw",
             "-o", f"{os.environ['ESD_BENCH_PYSPY']}.{count}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(1)  # attached
    if profiler:
        profiler.enable()
    with stages("confirm"):
        order.action_confirm()
        env.cr.commit()
    confirmed = time.perf_counter()
    with stages("cron calls, the rest (commits, progress)"):
        while Asset._cron_provision() or Asset.search_count(Asset._esd_due_domain()):
            pass  # the provisioning cron, call after call, as the runner calls it
    if profiler:
        profiler.disable()
        profiler.dump_stats(f"{profile}.{count}")
    if spy:
        spy.send_signal(signal.SIGINT)
        spy.wait()
    wall = time.perf_counter() - started
    cpu, pg_cpu = time.process_time() - cpu, backend_cpu() - pg_cpu
    path_queries = odoo.sql_db.sql_counter - queries
    email_queries = odoo.sql_db.sql_counter
    emails_started = time.perf_counter()
    if os.environ.get("ESD_BENCH_PROFILE_EMAILS"):  # a cProfile of the email cron, to a file
        cProfile.runctx(
            'while env["esd.asset"]._cron_send_welcome():\n    pass',
            globals(),
            {"env": env},
            os.environ["ESD_BENCH_PROFILE_EMAILS"],
        )
    else:
        while env["esd.asset"]._cron_send_welcome():  # the email cron, call after call
            pass
    emails = time.perf_counter() - emails_started
    email_queries = odoo.sql_db.sql_counter - email_queries
    admin.clear_faults()
    env.invalidate_all()
    assets = order.esd_asset_ids
    sql_queries = odoo.sql_db.sql_counter - queries  # the path and the emails, not Odoo alone
    STAGES[0] = Stages()  # Odoo alone's invoicing is not the addon's stage
    alone = odoo_alone(count)
    bound = count * latency_ms / 1000 / parallelism
    return {
        "licenses": count,
        "delivered": len(assets.filtered(lambda a: a.sync_status == "synchronized")),
        "invoices": len(order.invoice_ids),
        "invoice_lines": len(order.invoice_ids.invoice_line_ids),
        "confirm_s": round(confirmed - started, 2),
        "confirm_to_invoice_s": round(wall, 2),
        "emails_s": round(emails, 2),
        "email_ms_per_license": round(emails * 1000 / count, 1),
        "email_queries_per_license": round(email_queries / count, 1),
        "cpu_ms_per_license": round(cpu * 1000 / count, 1),
        "pg_cpu_ms_per_license": round(pg_cpu * 1000 / count, 1),
        "path_queries_per_license": round(path_queries / count, 1),
        "stages": stages.report(count),
        "bound_s": round(bound, 2),
        "ratio_to_bound": round(wall / bound, 2),
        "odoo_alone_s": round(alone, 2),
        "network_plus_odoo_s": round(bound + alone, 2),
        "ratio_to_network_plus_odoo": round(wall / (bound + alone), 2),
        "sql_queries": sql_queries,
        "sql_queries_per_license": round(sql_queries / count, 1),
    }


def peak_rss_mib():
    """The process's peak resident set (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


rss_before = peak_rss_mib()
try:
    report = {
        "parallelism": parallelism,
        "latency_ms": latency_ms,
        "runs": [run(max(1, licenses // 4)), run(licenses)],
        "peak_rss_mib_before_the_orders": rss_before,
        "peak_rss_mib": peak_rss_mib(),
    }
finally:
    unstage()
print("ESD-BENCH " + json.dumps(report))
