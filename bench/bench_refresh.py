# ruff: noqa: F821 - run inside odoo shell, which provides env
"""Benchmark: the hourly status refresh with 10,000 delivered licenses, 1,000 changed at Microsoft.

Run through ``make bench BENCH=refresh`` (inside ``odoo shell`` on a throw-away database; the
simulator's instance.json in ESD_BENCH_CONFIG). The licenses are real: orders confirmed, each
license ordered from the simulator (no latency) and recorded by the provisioning code
(``_esd_provision``, as the provisioning cron does; invoicing skipped, the refresh does not read
invoices). Microsoft's changes are made at the simulator with its admin surface (``force_status``):
900 licenses redeemed, 100 returned outside Odoo. Then the refresh cron's method runs
(``_cron_refresh_statuses``), timed, its SQL queries counted with ``odoo.sql_db.sql_counter``.

Two sizes with the same 1,000 changes: 1,000 unchanged licenses + 1,000 changed, then 9,000
unchanged + 1,000 changed (10,000 delivered). A refresh with nothing changed is measured too.
Prints one JSON report after ``ESD-BENCH``.
"""

# A benchmark: what it prints is its report, not a log.
# pylint: disable=print-used

import json
import os
import time

import odoo
from odoo import Command

from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient
from odoo.addons.microsoft_esd.tests.common import connected_instance, office_for_sale

CHANGED = int(os.environ.get("ESD_BENCH_CHANGED", "1000"))
TOTAL = int(os.environ.get("ESD_BENCH_TOTAL", "10000"))
config_path = os.environ["ESD_BENCH_CONFIG"]
admin = AdminClient(InstanceConfig.from_file(config_path))

# The set-up the Odoo tests share: the instance on the simulator, Office at 100 for sale.
instance = connected_instance(env, config_path)
product = office_for_sale(env, 100, instance)
env["ir.config_parameter"].set_param("microsoft_esd.parallelism", "16")
partner = env["res.partner"].create(
    {
        "name": "Refresh Customer",
        "is_company": True,
        "email": "r@bench.example",
        "country_id": env.ref("base.us").id,
    }
)
env.cr.commit()
Asset = env["esd.asset"]


def deliver(count):
    """``count`` more delivered licenses, by the provisioning code; their ids."""
    started = time.perf_counter()
    orders = env["sale.order"]
    for _index in range(0, count, 1000):
        orders |= env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": product.product_variant_id.id,
                            "product_uom_qty": min(1000, count - _index),
                        }
                    )
                ],
            }
        )
    orders.action_confirm()
    env.cr.commit()
    while True:
        batch = Asset._esd_claim(500, fresh=True)
        if not batch:
            break
        batch._esd_provision()
        env.cr.commit()
        env.invalidate_all()
    assets = orders.esd_asset_ids
    assert set(assets.mapped("sync_status")) == {"synchronized"}, "a license was not delivered"
    return assets.ids, round(time.perf_counter() - started, 1)


def refresh(label):
    time.sleep(1.1)  # "changed since" has a one-second resolution
    env.invalidate_all()
    queries = odoo.sql_db.sql_counter
    started = time.perf_counter()
    Asset._cron_refresh_statuses()
    env.flush_all()
    env.cr.commit()
    return {
        "refresh": label,
        "wall_s": round(time.perf_counter() - started, 2),
        "sql_queries": odoo.sql_db.sql_counter - queries,
    }


def change_at_microsoft(asset_ids):
    """Microsoft's changes: 90% redeemed by their customers, 10% returned outside Odoo."""
    time.sleep(1.1)
    started = time.perf_counter()
    assets = Asset.browse(asset_ids)
    returned = max(1, len(assets) // 10)
    for index, license_id in enumerate(assets.sudo().mapped("esd_license_id")):
        if index < returned:
            admin.force_status(license_id, "ReturnAccepted", "Successful")
        else:
            admin.force_status(license_id, "Redeemed")
    return round(time.perf_counter() - started, 1)


def statuses(asset_ids):
    env.invalidate_all()
    assets = Asset.browse(asset_ids)
    return {
        status: len(assets.filtered(lambda a, s=status: a.token_status == s))
        for status in set(assets.mapped("token_status"))
    }


report = {"changed": CHANGED, "runs": []}
# Size 1: 1,000 unchanged + 1,000 changed.
small, report["deliver_small_s"] = deliver(2 * CHANGED)
report["runs"].append(refresh(f"first ever ({len(small)} licenses, all new to it)"))
report["runs"].append(refresh(f"nothing changed ({len(small)} licenses)"))
report["force_status_s"] = change_at_microsoft(small[:CHANGED])
run = refresh(f"{CHANGED} unchanged + {CHANGED} changed")
run["unchanged"], run["changed"] = len(small) - CHANGED, CHANGED
run["statuses_after"] = statuses(small[:CHANGED])
report["runs"].append(run)
# Size 2: 10,000 delivered, 9,000 unchanged + 1,000 changed (never changed before).
more, report["deliver_more_s"] = deliver(TOTAL - len(small))
report["runs"].append(refresh(f"after delivering {len(more)} more (they are new to it)"))
report["runs"].append(refresh(f"nothing changed ({TOTAL} licenses)"))
changed = more[:CHANGED]
change_at_microsoft(changed)
run = refresh(f"{TOTAL - CHANGED} unchanged + {CHANGED} changed")
run["unchanged"], run["changed"] = TOTAL - CHANGED, CHANGED
run["statuses_after"] = statuses(changed)
report["runs"].append(run)
report["delivered_licenses"] = Asset.search_count([("sync_status", "=", "synchronized")])
print("ESD-BENCH " + json.dumps(report))
