"""Benchmark: one order of N licenses, from confirmation to the posted invoice.

Run through ``make bench`` (inside ``odoo shell`` on a throw-away database; the simulator's
instance.json in ESD_BENCH_CONFIG, its latency set to ESD_BENCH_LATENCY_MS on orders). Prints one
JSON report: wall time against the bound N x latency / parallelism, SQL queries per license, and
the peak resident memory of this Odoo process (VmHWM, after both orders; bound 512 MiB).
"""
# pylint: disable=print-used  # a benchmark: what it prints is its report

import json
import os
import time

import odoo
from odoo import Command

from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient
from odoo.addons.microsoft_esd.tests.common import connected_instance, office_for_sale

licenses = int(os.environ.get("ESD_BENCH_LICENSES", "200"))
latency_ms = int(os.environ.get("ESD_BENCH_LATENCY_MS", "100"))
config_path = os.environ["ESD_BENCH_CONFIG"]
admin = AdminClient(InstanceConfig.from_file(config_path))

# The set-up the Odoo tests share: the instance on the simulator, Office at 100 for sale.
instance = connected_instance(env, config_path)
product = office_for_sale(env, 100)
partner = env["res.partner"].create(
    {
        "name": "Bench Customer",
        "is_company": True,
        "email": "b@bench.example",
        "country_id": env.ref("base.us").id,
    }
)
parallelism = env["esd.asset"]._esd_parallelism()
env.cr.commit()


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
    queries = odoo.sql_db.sql_counter
    started = time.perf_counter()
    order.action_confirm()
    env.cr.commit()
    confirmed = time.perf_counter()
    Asset = env["esd.asset"]
    while Asset._cron_provision() or Asset.search_count(Asset._esd_due_domain()):
        pass  # the provisioning cron, call after call, as the runner calls it
    wall = time.perf_counter() - started
    email_queries = odoo.sql_db.sql_counter
    emails_started = time.perf_counter()
    if os.environ.get("ESD_BENCH_PROFILE_EMAILS"):  # a cProfile of the email cron, to a file
        import cProfile  # noqa: PLC0415 - only when asked

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
        "bound_s": round(count * latency_ms / 1000 / parallelism, 2),
        "ratio_to_bound": round(wall / (count * latency_ms / 1000 / parallelism), 2),
        "sql_queries": odoo.sql_db.sql_counter - queries,
        "sql_queries_per_license": round((odoo.sql_db.sql_counter - queries) / count, 1),
    }


if os.environ.get("ESD_BENCH_PROFILE"):
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run(licenses)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def peak_rss_mib():
    """The process's peak resident set (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


rss_before = peak_rss_mib()
report = {
    "parallelism": parallelism,
    "latency_ms": latency_ms,
    "runs": [run(licenses // 4), run(licenses)],
    "peak_rss_mib_before_the_orders": rss_before,
    "peak_rss_mib": peak_rss_mib(),
}
print("ESD-BENCH " + json.dumps(report))
