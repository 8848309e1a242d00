"""Soak test of the money paths: provisioning, then returns, under faults and kill -9.

Run with ``make soak`` (``make soak SOAK_ARGS="--licenses N"``): a throw-away database with
the addon, the CIS simulator, and two real Odoo servers whose cron threads run the provisioning
crons. The simulator fails a share of the CIS calls (503, 429 with Retry-After, and requests
processed but whose answer is dropped); servers are killed with SIGKILL and restarted while they
work. Then a third of the licenses are returned by two processes, one of them killed, under the
same faults; the returns cron of the servers finishes what they left.

It checks and prints: licenses lost, extra keys at the simulator, invoice lines against
licenses, credit notes against returns, double credits, emails per license. Exit code 0 only
when every check holds.
"""
# pylint: disable=print-used  # a benchmark: what it prints is its report

import argparse
import json
import random
import shutil
import sys
import time

from cluster import Cluster

SETUP = """
import os
from odoo import Command
from odoo.addons.microsoft_esd.tests.common import connected_instance, office_for_sale

# The set-up the Odoo tests share: the instance on the simulator, Office at 100 for sale.
instance = connected_instance(env, os.environ["ESD_SIM_CONFIG"])
product = office_for_sale(env, 100, instance)
# The emails stay in the queue, where they are counted (no mail server here).
env.ref("mail.ir_cron_mail_scheduler_action").active = False
orders = env["sale.order"]
per_order = int(os.environ["ESD_SOAK_PER_ORDER"])
for index in range(int(os.environ["ESD_SOAK_ORDERS"])):
    customer = env["res.partner"].create({
        "name": f"Soak Customer {index}", "is_company": True,
        "email": f"it{index}@soak.example", "country_id": env.ref("base.us").id,
    })
    orders |= env["sale.order"].create({
        "partner_id": customer.id,
        "order_line": [Command.create(
            {"product_id": product.product_variant_id.id, "product_uom_qty": per_order}
        )],
    })
env.cr.commit()
print("SOAK-ORDERS", " ".join(map(str, orders.ids)))
"""

CONFIRM = """
import os
orders = env["sale.order"].browse(map(int, os.environ["ESD_SOAK_ORDER_IDS"].split()))
orders.action_confirm()
env.cr.commit()
print("SOAK-CONFIRMED")
"""

# Cancel License pressed for each license; pressed again, as a user would, when Odoo says it is
# working on the license right now (a job holds its order) or the press met a job's change.
RETURN = """
import os, time
for asset_id in map(int, os.environ["ESD_SOAK_RETURNS"].split()):
    for attempt in range(10):
        asset = env["esd.asset"].sudo().browse(asset_id)
        try:
            asset._esd_cancel()
            env.cr.commit()
            break
        except Exception as exc:
            env.cr.rollback()
            env.invalidate_all()
            print("SOAK-RETURN-AGAIN", asset_id, type(exc).__name__)
            time.sleep(1)
"""


def count(cluster, sql, *params):
    return cluster.scalar(sql, params)


def wait_until(cluster, what, done, timeout, kills, crash_every):
    """Wait for ``done()``, killing and restarting a server every ``crash_every`` seconds."""
    started = time.monotonic()
    next_kill = started + crash_every
    while not done():
        now = time.monotonic()
        if now - started > timeout:
            print(f"  {what}: not finished after {timeout}s")
            return False
        if kills["left"] and now >= next_kill:
            victim = random.choice(sorted(cluster.servers))
            cluster.kill(victim)
            cluster.start(victim)
            kills["left"] -= 1
            kills["done"] += 1
            next_kill = now + crash_every
        time.sleep(0.5)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--licenses", type=int, default=1000)
    parser.add_argument("--per-order", type=int, default=100)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--kills", type=int, default=10, help="SIGKILLs while provisioning")
    parser.add_argument("--crash-every", type=float, default=4.0, help="seconds between kills")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--timeout", type=int, default=1200)
    parser.add_argument("--logs", default=".build/logs/soak")
    args = parser.parse_args()
    random.seed(7)
    shutil.rmtree(args.logs, ignore_errors=True)
    cluster = Cluster(args.logs)
    orders_count = max(1, args.licenses // args.per_order)
    out = cluster.shell(
        SETUP,
        ESD_SOAK_ORDERS=orders_count,
        ESD_SOAK_PER_ORDER=args.per_order,
        ESD_SIM_CONFIG=cluster.sim_config,
    )
    order_ids = next(line for line in out.splitlines() if line.startswith("SOAK-ORDERS"))
    order_ids = order_ids.split(maxsplit=1)[1]
    licenses = orders_count * args.per_order
    # 20%: half 503, a quarter 429 (Retry-After 1 s), a quarter processed then dropped.
    rate = args.fault_rate
    cluster.sim.faults(
        latency_ms=args.latency_ms,
        error_rate=rate / 2,
        rate_limit_rate=rate / 4,
        retry_after=1,
        drop_rate=rate / 4,
    )
    for index in range(args.servers):
        cluster.start(f"server{index + 1}")
    report = {"licenses": licenses, "orders": orders_count, "servers": args.servers}
    report["fault_rate"] = rate
    kills = {"left": args.kills, "done": 0}
    started = time.monotonic()
    try:
        cluster.shell(CONFIRM, ESD_SOAK_ORDER_IDS=order_ids)

        def provisioned():
            pending = count(
                cluster,
                "SELECT count(*) FROM esd_asset WHERE sync_status = 'unsynchronised'",
            )
            uninvoiced = count(
                cluster,
                "SELECT count(*) FROM esd_asset WHERE sync_status = 'synchronized' "
                "AND invoice_line_id IS NULL",
            )
            unsent = count(cluster, "SELECT count(*) FROM esd_asset WHERE welcome_pending")
            return not (pending or uninvoiced or unsent)

        finished = wait_until(
            cluster, "provisioning", provisioned, args.timeout, kills, args.crash_every
        )
        report["provisioning_s"] = round(time.monotonic() - started, 1)
        report["kills_while_provisioning"] = kills["done"]
        report["provisioning_finished"] = finished
        report.update(check_provisioning(cluster, licenses))

        # Returns: a third of the licenses, by two processes; one is killed half way.
        delivered = [
            row[0]
            for row in cluster.query(
                "SELECT id FROM esd_asset WHERE sync_status = 'synchronized' ORDER BY id"
            )
        ]
        chosen = random.sample(delivered, len(delivered) // 3)
        halves = [chosen[::2], chosen[1::2]]
        returners = [
            cluster.shell(RETURN, background=True, ESD_SOAK_RETURNS=" ".join(map(str, half)))
            for half in halves
        ]
        started = time.monotonic()
        time.sleep(max(2.0, len(chosen) / 40))
        returners[0].kill()
        returners[0].wait()
        kills = {"left": args.kills // 2, "done": 1}

        def returned():
            if returners[1].poll() is None:
                return False
            return not count(
                cluster,
                "SELECT count(*) FROM esd_asset WHERE return_state IN ('requested', 'accepted')",
            )

        # The killed returner left licenses it never reached: they are returned afterwards,
        # as a user would press Cancel again.
        finished = wait_until(cluster, "returns", returned, args.timeout, kills, args.crash_every)
        untouched = [
            row[0]
            for row in cluster.query(
                "SELECT id FROM esd_asset WHERE id IN %s AND return_state = 'none'",
                (tuple(chosen),),
            )
        ]
        if untouched:
            cluster.shell(RETURN, ESD_SOAK_RETURNS=" ".join(map(str, untouched)))
            finished = wait_until(cluster, "returns", returned, args.timeout, kills, 1e9)
        report["returns"] = len(chosen)
        report["returned_again_after_the_kill"] = len(untouched)
        report["returns_s"] = round(time.monotonic() - started, 1)
        report["kills_while_returning"] = kills["done"]
        report["returns_finished"] = finished
        report.update(check_returns(cluster, chosen))
    finally:
        cluster.stop_all()
        cluster.sim.clear_faults()
    print(json.dumps(report, indent=2))
    failures = [
        key
        for key in (
            "licenses_lost",
            "extra_keys_at_simulator",
            "licenses_without_invoice_line",
            "licenses_invoiced_twice",
            "licenses_without_one_email",
            "returns_not_completed",
            "double_credits",
            "returns_without_credit_note",
        )
        if report.get(key)
    ]
    if failures or not report["provisioning_finished"] or not report["returns_finished"]:
        print("SOAK FAILED: " + ", ".join(failures or ["not finished"]))
        return 1
    print("SOAK PASSED")
    return 0


def check_provisioning(cluster, licenses):
    delivered = count(cluster, "SELECT count(*) FROM esd_asset WHERE sync_status = 'synchronized'")
    failed = count(cluster, "SELECT count(*) FROM esd_asset WHERE sync_status = 'failed'")
    recorded = {
        row[0]
        for row in cluster.query(
            "SELECT esd_license_id FROM esd_asset WHERE esd_license_id IS NOT NULL"
        )
    }
    at_simulator = {lic["licenseId"] for lic in cluster.sim.licenses()}
    invoiced = cluster.query(
        """SELECT a.id, count(l.id) FROM esd_asset a
             LEFT JOIN sale_order_line_invoice_rel r ON r.order_line_id = a.sale_line_id
             LEFT JOIN account_move_line l ON l.id = r.invoice_line_id
             LEFT JOIN account_move m ON m.id = l.move_id
            WHERE a.sync_status = 'synchronized'
              AND (m.id IS NULL OR (m.move_type = 'out_invoice' AND m.state = 'posted'))
            GROUP BY a.id"""
    )
    emails = cluster.query(
        """SELECT a.id, count(m.id) FROM esd_asset a
             LEFT JOIN mail_mail m ON m.esd_asset_id = a.id
            WHERE a.sync_status = 'synchronized' GROUP BY a.id"""
    )
    return {
        "licenses_created": count(cluster, "SELECT count(*) FROM esd_asset"),
        "delivered": delivered,
        "failed_for_good": failed,
        "licenses_lost": licenses - delivered - failed,
        "extra_keys_at_simulator": len(at_simulator - recorded),
        "invoice_lines": sum(n for _id, n in invoiced),
        "licenses_without_invoice_line": sum(1 for _id, n in invoiced if n == 0),
        "licenses_invoiced_twice": sum(1 for _id, n in invoiced if n > 1),
        "invoices": count(
            cluster,
            "SELECT count(*) FROM account_move WHERE move_type = 'out_invoice' "
            "AND state = 'posted'",
        ),
        "emails": sum(n for _id, n in emails),
        "licenses_without_one_email": sum(1 for _id, n in emails if n != 1),
    }


def check_returns(cluster, chosen):
    rows = cluster.query(
        """SELECT a.id, a.state, a.return_state,
                  (SELECT count(*) FROM sale_order_line_invoice_rel r
                     JOIN account_move_line l ON l.id = r.invoice_line_id
                     JOIN account_move m ON m.id = l.move_id
                    WHERE r.order_line_id = a.sale_line_id AND m.move_type = 'out_refund'
                      AND m.state = 'posted')
             FROM esd_asset a WHERE a.id IN %s""",
        (tuple(chosen),),
    )
    returned_at_simulator = sum(
        1 for lic in cluster.sim.licenses() if lic["tokenStatus"] == "ReturnAccepted"
    )
    done = [r for r in rows if r[1] == "cancelled" and r[2] == "done"]
    return {
        "returned_and_credited": len(done),
        "returned_at_simulator": returned_at_simulator,
        "returns_not_completed": len(rows) - len(done),
        "credit_notes": sum(r[3] for r in rows),
        "returns_without_credit_note": sum(1 for r in done if r[3] == 0),
        "double_credits": sum(1 for r in rows if r[3] > 1),
    }


if __name__ == "__main__":
    sys.exit(main())
