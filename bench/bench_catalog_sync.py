"""Benchmark: first and unchanged catalog sync of a 5,000-product catalog.

Run through ``make bench`` (it executes this file inside ``odoo shell`` on a throw-away database
with the addon installed, and passes the simulator's instance.json in ESD_BENCH_CONFIG).
Prints one JSON report: wall time and SQL query count of each sync, and the peak resident memory
of this Odoo process (VmHWM; bound 512 MiB).
"""
# pylint: disable=print-used  # a benchmark: what it prints is its report

import json
import os
import time

import odoo

config_path = os.environ["ESD_BENCH_CONFIG"]
Instance = env["esd.instance"]
instance = Instance.create(Instance._esd_values_from_simulator(config_path))
instance.action_test_connection()
assert instance.state == "connected", instance.last_error
env.cr.commit()


def measure(label):
    env.invalidate_all()
    queries = odoo.sql_db.sql_counter
    started = time.perf_counter()
    result = instance._sync_catalog()
    env.flush_all()
    env.cr.commit()
    return {
        "sync": label,
        "wall_s": round(time.perf_counter() - started, 2),
        "sql_queries": odoo.sql_db.sql_counter - queries,
        "products_in_cis": result.total_count,
        "new": result.new_count,
        "changed": result.updated_count,
        "discontinued": result.discontinued_count,
        "unchanged": result.unchanged_count,
    }


def peak_rss_mib():
    """The process's peak resident set (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


report = {"syncs": [measure("first"), measure("unchanged re-sync")]}
report["peak_rss_mib"] = peak_rss_mib()
print("ESD-BENCH " + json.dumps(report))
