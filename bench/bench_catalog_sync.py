"""Benchmark: first and unchanged catalog sync of a 5,000-product catalog.

Run through ``make bench`` (it executes this file inside ``odoo shell`` on a throw-away database
with the addon installed, and passes the simulator's instance.json in ESD_BENCH_CONFIG).
Prints one JSON report: wall time and SQL query count of each sync, and the peak resident memory
of this Odoo process (VmHWM; bound 512 MiB).

With ESD_BENCH_PRICE_RULE=1 (issue 31), the instance prices the catalog by its rule (cost + 25 %,
ends in .99), two reseller tiers (pricelists on cost) have 10 resellers each, and a third sync
follows Microsoft's change of 100 prices (recorded with each tier's old and new price).
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
PRICE_RULE = bool(os.environ.get("ESD_BENCH_PRICE_RULE"))
if PRICE_RULE:
    instance.write(
        {"esd_price_from_cost": True, "esd_price_markup": 25.0, "esd_price_rounding": "0.99"}
    )
    for name, markup in (("Gold resellers", 8.0), ("Silver resellers", 12.0)):
        tier = env["product.pricelist"].create(
            {
                "name": name,
                "sequence": 50,
                "item_ids": [
                    odoo.Command.create(
                        {
                            "compute_price": "formula",
                            "base": "standard_price",
                            "price_discount": -markup,
                            "price_markup": markup,
                        }
                    )
                ],
            }
        )
        env["res.partner"].create(
            [
                {
                    "name": f"{name} {index}",
                    "is_company": True,
                    "esd_role": "reseller",
                    "property_product_pricelist": tier.id,
                }
                for index in range(10)
            ]
        )
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
        "price_changes": len(result.price_change_ids),
    }


def peak_rss_mib():
    """The process's peak resident set (VmHWM), in MiB."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) // 1024


report = {"price_rule": PRICE_RULE, "syncs": [measure("first"), measure("unchanged re-sync")]}
if PRICE_RULE:
    from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
    from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient

    admin = AdminClient(InstanceConfig.from_file(config_path))
    products = env["product.template"].search(
        [("esd_instance_id", "=", instance.id), ("esd_catalog_status", "!=", "discontinued")],
        limit=100,
        order="id",
    )
    for product in products:
        admin.catalog("reprice", product.esd_product_id, amount=product.esd_cis_price + 10)
    report["syncs"].append(measure("100 prices changed"))
report["peak_rss_mib"] = peak_rss_mib()
print("ESD-BENCH " + json.dumps(report))
