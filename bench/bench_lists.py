"""Benchmark: license lists at volume, through a real Odoo server.

Run with ``make bench BENCH=lists`` (``.venv/bin/python bench/run.py --only lists``): a throw-away
database with the addon holding 50,000 licenses (1,000 customers buying directly, a reseller with
5,000 licenses billed to it for 10 end customers, a reseller with 50 for 10 end customers); one
``odoo-bin`` server (threaded, log level info: Odoo's request log line ends with the request's SQL
query count, its query time and the rest of its time).

- Portal: each reseller's portal user logs in (``/web/login``) and opens ``/my/esd`` four times;
  the query count is read from the server's log line of each request (the first is cold).
- Backend: the administrator logs in and calls ``esd.asset.web_search_read`` over JSON-RPC as the
  web client does for the license list (the list view's fields, read with ``get_views``; limit 80,
  count_limit 10,001): no filter, a customer searched by name, the status filters "Redeemed" and
  "Provisioning failed", a license key (the search field "License Key"). Each four times; wall
  time measured by the client, query count from the log.

The licenses are inserted in SQL from one license created by the ORM (its columns copied, with each
row's own reference, customer, idempotency key, CIS license id, status and key: the key's lookup
hash and tail computed with the addon's vault, as ``_esd_store_secrets`` does). Prints one JSON
report after ``ESD-BENCH``.
"""

# A benchmark: what it prints is its report, not a log.
# pylint: disable=print-used

import contextlib
import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cluster import Cluster  # noqa: E402

SETUP = r"""
import json, os, random, uuid
from psycopg2.extras import execute_values
random.seed(13)
TOTAL, BIG = int(os.environ["ESD_TOTAL"]), int(os.environ["ESD_BIG"])
SMALL = int(os.environ["ESD_SMALL"])
Instance = env["esd.instance"]
instance = Instance.create(Instance._esd_values_from_simulator(os.environ["ESD_SIM_CONFIG"]))
products = env["product.product"].create(
    [{"name": f"Microsoft Bench Product {i}"} for i in range(20)]
)
Partner = env["res.partner"]
us = env.ref("base.us").id
def companies(prefix, count):
    return Partner.create([{"name": f"{prefix} {i:04d}", "is_company": True, "country_id": us,
                            "email": f"{prefix.replace(' ', '').lower()}{i}@lists.example"}
                           for i in range(count)])
direct = companies("Direct Customer", 1000)
resellers = companies("Reseller", 2)
big_customers = companies("Big End Customer", 10)
small_customers = companies("Small End Customer", 10)
portal = env.ref("base.group_portal")
for reseller, login in zip(resellers, ("bigreseller", "smallreseller")):
    env["res.users"].create({"name": reseller.name, "login": login, "password": login,
                             "partner_id": reseller.id, "groups_id": [(6, 0, [portal.id])]})
SaleOrder = env["sale.order"]
order_of = {}
def order(partner):
    if partner.id not in order_of:
        order_of[partner.id] = SaleOrder.create({"partner_id": partner.id}).id
    return order_of[partner.id]
template = env["esd.asset"].sudo().create({
    "customer_id": direct[0].id, "billing_partner_id": direct[0].id,
    "sale_order_id": order(direct[0]), "product_id": products[0].id,
    "instance_id": instance.id, "currency_id": env.company.currency_id.id, "price_unit": 100,
})
env.flush_all()
env.cr.execute("SELECT * FROM esd_asset WHERE id = %s", [template.id])
base = env.cr.dictfetchall()[0]
del base["id"]
vault = env["esd.asset"]._esd_vault()
rows, keys = [], []
for n in range(TOTAL - 1):
    if n < BIG:
        customer, billing = big_customers[n % 10], resellers[0]
    elif n < BIG + SMALL:
        customer, billing = small_customers[n % 10], resellers[1]
    else:
        customer = billing = direct[n % 1000]
    key = "-".join("".join(random.choices("BCDFGHJKMPQRTVWXY2346789", k=5)) for _ in range(5))
    keys.append(key)
    roll = random.random()
    token_status = "redeemed" if roll < 0.15 else "return_accepted" if roll < 0.18 else "activated"
    row = dict(base, name=f"ESD/{n + 2:06d}", customer_id=customer.id,
               billing_partner_id=billing.id,
               sale_order_id=order(billing), product_id=products[n % 20].id,
               request_id=str(uuid.uuid4()), esd_license_id=f"LIC-BENCH-{n:06d}",
               token_hash=vault.lookup_hash(key), token_tail=key[-5:], token_status=token_status,
               state="cancelled" if token_status == "return_accepted" else "active",
               sync_status="failed" if roll > 0.99 else "synchronized",
               purchase_date=f"2026-{1 + n % 12:02d}-{1 + n % 28:02d}")
    rows.append(row)
columns = list(rows[0])
execute_values(env.cr, f"INSERT INTO esd_asset ({', '.join(columns)}) VALUES %s",
               [tuple(r[c] for c in columns) for r in rows], page_size=2000)
env.cr.execute("ANALYZE esd_asset")
env.cr.execute("SELECT count(*) FROM esd_asset")
count = env.cr.fetchone()[0]
env.cr.commit()
print("BENCH-SETUP", json.dumps({"licenses": count, "key": keys[TOTAL // 2],
      "customer": direct[777].name}))
"""

PERF = re.compile(r'"(?:GET|POST) (\S+) HTTP/[\d.]+" \d+ \S+ (\d+) ([\d.]+) ([\d.]+)')


class Server:
    def __init__(self, cluster):
        self.proc = cluster.start("lists", cron_threads=0, log_level="info")
        self.log = cluster.logs / f"lists-{cluster.started}.log"
        self.url = f"http://127.0.0.1:{self.proc.http_port}"
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/web/health", timeout=2).ok:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the Odoo server did not start: see {self.log}")
            time.sleep(0.3)

    def queries(self, path):
        """SQL queries of the last logged request for ``path`` (the log line is written after
        the answer: wait for it)."""
        for _attempt in range(50):
            text = self.log.read_text() if self.log.exists() else ""
            found = [m for m in PERF.finditer(text) if m.group(1) == path]
            if found:
                return int(found[-1].group(2))
            time.sleep(0.1)
        raise SystemExit(f"no log line for {path} in {self.log}")


def login(server, user, password):
    session = requests.Session()
    page = session.get(server.url + "/web/login", timeout=60).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = session.post(
        server.url + "/web/login",
        data={"login": user, "password": password, "csrf_token": csrf, "redirect": "/my"},
        timeout=60,
    )
    assert answer.ok and "/web/login" not in answer.url, f"{user} could not log in"
    return session


def portal(server, user, repeat=4):
    session = login(server, user, user)
    runs = []
    for index in range(repeat):
        path = f"/my/esd?bench={user}-{index}"
        started = time.perf_counter()
        answer = session.get(server.url + path, timeout=120)
        wall = time.perf_counter() - started
        assert answer.ok and "o_esd_portal_row" in answer.text, f"{path}: {answer.status_code}"
        runs.append({"wall_s": round(wall, 3), "sql_queries": server.queries(path)})
    return runs


def rpc(server, session, model, method, args, kwargs, tag):
    path = f"/web/dataset/call_kw/{model}/{method}?bench={tag}"
    payload = {"jsonrpc": "2.0", "method": "call", "id": 1}
    payload["params"] = {"model": model, "method": method, "args": args, "kwargs": kwargs}
    started = time.perf_counter()
    answer = session.post(server.url + path, json=payload, timeout=120).json()
    wall = time.perf_counter() - started
    if "error" in answer:
        raise SystemExit(f"{method}: {answer['error']['data']['message']}")
    return answer["result"], wall, server.queries(path)


def list_specification(server, session, context):
    views, _wall, _queries = rpc(
        server,
        session,
        "esd.asset",
        "get_views",
        [],
        {"views": [[False, "list"]], "context": context},
        "views",
    )
    arch = ET.fromstring(views["views"]["list"]["arch"])
    fields = views["models"]["esd.asset"]["fields"]
    spec = {}
    for node in arch.iter("field"):
        name = node.get("name")
        many2one = fields[name]["type"] == "many2one"
        spec[name] = {"fields": {"display_name": {}}} if many2one else {}
    return spec


def backend(server, setup, repeat=4):
    session = login(server, "admin", "admin")
    context = {"lang": "en_US", "tz": "UTC", "bin_size": True}
    spec = list_specification(server, session, context)
    searches = {
        "no filter": [],
        "customer (by name)": [("customer_id", "ilike", setup["customer"])],
        "status: Redeemed": [("token_status", "=", "redeemed")],
        "status: Provisioning failed": [("sync_status", "=", "failed")],
        "license key": [("token", "ilike", setup["key"])],
    }
    report = {"fields": sorted(spec), "searches": {}}
    for label, domain in searches.items():
        runs = []
        for index in range(repeat):
            kwargs = {
                "domain": domain,
                "specification": spec,
                "offset": 0,
                "limit": 80,
                "order": "",
                "count_limit": 10001,
                "context": context,
            }
            tag = f"{label.replace(' ', '_').replace(':', '')}-{index}"
            result, wall, queries = rpc(
                server, session, "esd.asset", "web_search_read", [], kwargs, tag
            )
            runs.append({"wall_s": round(wall, 3), "sql_queries": queries})
        report["searches"][label] = {"found": result["length"], "runs": runs}
    return report


def main():
    total = int(os.environ.get("ESD_LISTS_TOTAL", "50000"))
    cluster = Cluster(".build/logs/lists")
    big, small = (
        int(os.environ.get(f"ESD_LISTS_{size}", default))
        for size, default in (("BIG", 5000), ("SMALL", 50))
    )
    out = cluster.shell(SETUP, ESD_TOTAL=total, ESD_BIG=big, ESD_SMALL=small)
    setup = json.loads(next(x for x in out.splitlines() if x.startswith("BENCH-SETUP"))[12:])
    report = {"licenses": setup["licenses"]}
    try:
        server = Server(cluster)
        report["portal"] = {
            "reseller with 50 licenses": portal(server, "smallreseller"),
            "reseller with 5,000 licenses": portal(server, "bigreseller"),
        }
        report["backend"] = backend(server, setup)
        report["indexes"] = [
            row[0]
            for row in cluster.query(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'esd_asset' ORDER BY indexname"
            )
        ]
    finally:
        cluster.stop_all()
    print("ESD-BENCH " + json.dumps(report), flush=True)
    small = report["portal"]["reseller with 50 licenses"][-1]["sql_queries"]
    big = report["portal"]["reseller with 5,000 licenses"][-1]["sql_queries"]
    verdict = "met" if big <= small else f"MISSED by {big - small}"
    print(
        f"  /my/esd SQL queries (warm): {small} at 50 licenses, {big} at 5,000 [bound: not more: "
        f"{verdict}]"
    )
    for label, search in report["backend"]["searches"].items():
        worst = max(run["wall_s"] for run in search["runs"][1:])
        verdict = "met" if worst <= 1 else f"MISSED by {worst - 1:.2f} s"
        print(
            f"  backend list, {label}: {worst} s warm (cold {search['runs'][0]['wall_s']} s), "
            f"{search['found']} found, {search['runs'][-1]['sql_queries']} queries "
            f"[bound <= 1 s: {verdict}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
