"""Benchmark: time to key, from a shop customer's payment to its welcome email at the SMTP server.

Run with ``make bench BENCH=checkout`` (``.venv/bin/python bench/run.py --only checkout``): a
throw-away database with the addon and payment_demo (no demo data); the CIS simulator with 300 ms
of latency on every API call; a tiny SMTP server of this script's own (the sink) to which Odoo
sends its email; ``odoo-bin --workers 2 --max-cron-threads 2`` (prefork: two HTTP workers, two cron
worker processes, which run the provisioning crons, the email cron and Odoo's mail queue).

20 guest customers check out at once, each in a thread of its own with its own ``requests``
session, making the requests a browser makes: the product page, the cart (JSON-RPC), the address
form (a guest: a new customer, whose CIS account is created by the provisioning job), the checkout
and its Confirm, the payment page, the demo provider's transaction and payment, the payment
status poll (which confirms the order), the confirmation page, then the confirmation page's
refreshes of the licenses (2 s, then 1.5 times longer each, as its widget does). Two customers
check out first to warm the workers up; they are not counted.

Time to key, per license: from the moment the customer's payment request returned (the demo
provider's /payment/demo/simulate_payment: the transaction is done and committed) to the arrival of
the license's welcome email at the sink (its subject names the license). In between, the stages:
the order confirmed (Odoo confirms a paid web order in the payment status poll that the status page
sends next; the licenses are created then), the provisioning cron call that orders the license from
CIS, its delivery committed, the email cron call, the email queued, the mail queue cron call, the
email at the sink. They are read from the database: a thread polls it every 50 ms (when each
license is first seen, seen delivered, its email seen queued: commits, to 50 ms) and its
timestamps say when the transactions that did a step began (a write's ``write_date`` is its
transaction's start: the provisioning cron call that ordered the license; the queued email's
``create_date``: the email cron call; ``ir_cron_progress``: the mail queue's cron calls).

Writes a JSON report, report.json in its log folder (.build/logs/checkout, with the server's log),
which bench/run.py prints with its bound, p95 <= 10 s. Never prints an email's body (it holds the
key): counts and times.
"""

# A benchmark: what it prints is its report, not a log.
# pylint: disable=print-used

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import sys
import threading
import time
from datetime import timezone
from html.parser import HTMLParser
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_scaleout import cpu_seconds, machine_cpu, postgres_cpu, wait_up  # noqa: E402
from cluster import Cluster, free_port  # noqa: E402

from microsoft_esd.simulator import smtp_sink as simulator_smtp  # noqa: E402 - cluster's path

SETUP = """
import os
from odoo.addons.microsoft_esd.models.esd_asset_provisioning import PROVISION_CRONS
from odoo.addons.microsoft_esd.tests.common import connected_instance, office_for_sale

# The set-up the Odoo tests share: the instance on the simulator, Office for sale at 199.99 (its
# cost is Microsoft's 149.99, and the shop refuses a license below its cost), then published on
# the website; the demo payment provider enabled (test mode) and published, as the
# shop tests do; the company's email, which the license emails are sent from.
instance = connected_instance(env, os.environ["ESD_SIM_CONFIG"])
product = office_for_sale(env, 199.99, instance)
product.action_esd_publish_on_website()
env.ref("payment.payment_provider_demo").write({"state": "test", "is_published": True})
env.company.email = "shop@bench.example"
if os.environ.get("ESD_BASE_URL"):  # wkhtmltopdf then fetches the order PDF's styles from it
    env["ir.config_parameter"].set_param("web.base.url", os.environ["ESD_BASE_URL"])
    env["ir.config_parameter"].set_param("web.base.url.freeze", True)
if os.environ.get("ESD_NO_ORDER_PDF"):  # as a shop may choose: order emails without their PDF
    env["mail.template"].search([("model", "=", "sale.order")]).report_template_ids = False
if os.environ.get("ESD_ASYNC_ORDER_EMAILS"):  # Odoo's sale_async_emails: sent by a cron instead
    env["ir.config_parameter"].set_param("sale.async_emails", True)
env.cr.commit()
print("BENCH-PRODUCT", product.product_variant_id.id, product.website_url)
print("BENCH-CRONS", " ".join(
    f"{xmlid}={env.ref(xmlid).id}"
    for xmlid in ("mail.ir_cron_mail_scheduler_action", *PROVISION_CRONS)
))
"""

WELCOME_SUBJECT = re.compile(r"^Your Microsoft license: .*\((ESD/[^()]+)\)\s*$")


# ---------------------------------------------------------------------- the environment
def gevent_metadata_shim(folder):
    """A folder for PYTHONPATH that lets a prefork server's longpolling process start, or None.

    That process (``odoo-bin gevent``) patches with gevent, which loads its plugins through
    pkg_resources; the setuptools of a new virtualenv (65.5 with Python 3.11) does not find a
    distribution whose metadata folder has the normalized name recent wheels give it
    (zope_interface-8.7.dist-info for zope.interface), so the process dies at start, and the
    prefork server starts it again every second: a core of this 2-core machine burnt. The
    folder holds metadata under the name pkg_resources looks for; nothing else changes."""
    from importlib import metadata  # noqa: PLC0415

    import pkg_resources  # noqa: PLC0415 - setuptools', as gevent uses it

    missing = []
    for requirement in pkg_resources.get_distribution("gevent").requires():
        try:
            pkg_resources.get_distribution(requirement.project_name)
        except pkg_resources.DistributionNotFound:
            missing.append(requirement.project_name)
    for name in missing:
        version = metadata.version(name)
        info = Path(folder) / f"{name}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return folder if missing else None


# ---------------------------------------------------------------------- the SMTP sink
def welcome_license(subject):
    """The license a welcome email's subject names (None for any other email)."""
    match = WELCOME_SUBJECT.match(subject)
    return {"license": match and match.group(1)}


# ---------------------------------------------------------------------- a customer's browser
class PageForms(HTMLParser):
    """The attributes of the elements a customer's browser script reads on a page."""

    def __init__(self, text):
        super().__init__()
        self.found = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        key = None
        if tag == "form" and attrs.get("id") == "o_payment_form":
            key = "payment_form"
        elif tag == "input" and attrs.get("name") == "o_payment_radio":
            key = f"radio_{attrs.get('data-provider-code')}"
        elif tag == "input" and attrs.get("name") == "csrf_token":
            key = "csrf"
        elif "o_esd_order_licenses" in (attrs.get("class") or "").split():
            key = "licenses"
        if key:
            self.found.setdefault(key, attrs)


class RpcError(Exception):
    pass


class Customer:
    """One guest customer's browser: one requests session, the requests its pages make."""

    def __init__(self, base, index, product_id, product_url, quantity, address):
        self.base, self.index = base, index
        self.country_id, self.state_id = address
        self.product_id, self.product_url, self.quantity = product_id, product_url, quantity
        self.http = requests.Session()
        self.times, self.requests, self.errors = {}, 0, []
        self.order_id, self.last = None, None

    def get(self, path, **kwargs):
        self.requests, self.last = self.requests + 1, path
        response = self.http.get(self.base + path, timeout=300, **kwargs)
        response.raise_for_status()
        return response

    def post(self, path, data):
        self.requests, self.last = self.requests + 1, path
        response = self.http.post(self.base + path, data=data, timeout=300)
        response.raise_for_status()
        return response

    def rpc(self, path, params):
        self.requests, self.last = self.requests + 1, path
        response = self.http.post(
            self.base + path,
            json={"jsonrpc": "2.0", "method": "call", "id": self.requests, "params": params},
            timeout=300,
        )
        response.raise_for_status()
        answer = response.json()
        if "error" in answer:
            error = answer["error"]
            raise RpcError(error.get("data", {}).get("message") or str(error)[:300])
        return answer.get("result")  # None is left out of the answer

    def checkout(self, run):
        """From the product page to the payment confirmed; the order's id."""
        self.times["start"] = time.time()
        self.get("/shop")
        self.get(self.product_url)
        cart = {"product_id": self.product_id, "add_qty": self.quantity}
        self.rpc("/shop/cart/update_json", cart)
        self.get("/shop/cart")
        page = self.get("/shop/checkout")  # a guest is sent to the address form
        csrf = PageForms(page.text).found["csrf"]["value"]
        answer = self.post(
            "/shop/address/submit",
            {
                "csrf_token": csrf,
                "name": f"Guest {run}-{self.index}",
                "email": f"guest-{run}-{self.index}@bench.example",
                "phone": "+1 518 555 0100",
                "street": "1 Main Street",
                "city": "Albany",
                "zip": "12207",
                "country_id": self.country_id,
                "state_id": self.state_id,
                "address_type": "billing",
                "use_delivery_as_billing": "true",
            },
        ).json()
        self.get(answer.get("successUrl") or "/shop/checkout")
        # The checkout's Confirm: Odoo prices the cart, the addon splits it, the payment page.
        page = self.get("/shop/confirm_order")
        found = PageForms(page.text).found
        form, radio = found["payment_form"], found["radio_demo"]
        self.order_id = int(form["data-transaction-route"].rstrip("/").rsplit("/", 1)[1])
        self.times["payment_page"] = time.time()
        tx = self.rpc(
            form["data-transaction-route"],
            {
                "provider_id": int(radio["data-provider-id"]),
                "payment_method_id": int(radio["data-payment-option-id"]),
                "token_id": None,
                "amount": float(form["data-amount"]),
                "flow": "direct",
                "tokenization_requested": False,
                "landing_route": form["data-landing-route"],
                "is_validation": False,
                "access_token": form["data-access-token"],
            },
        )
        # The demo provider's form: the payment, then the status page and its poll.
        self.rpc(
            "/payment/demo/simulate_payment",
            {"reference": tx["reference"], "payment_details": "4242", "simulated_state": "done"},
        )
        self.times["paid"] = time.time()  # t0 of the time to key: the transaction is done
        status = self.get("/payment/status")
        csrf = re.search(r'csrf_token: "([^"]+)"', status.text)
        poll = {"csrf_token": csrf and csrf.group(1)}
        for attempt in range(10):
            try:
                self.times["poll_sent"] = time.time()
                result = self.rpc("/payment/status/poll", poll)
                break
            except (RpcError, requests.ConnectionError) as exc:
                # The status page polls again 3 s after a "retry" or a lost connection.
                lost = isinstance(exc, requests.ConnectionError)
                if not (lost or "retry" in str(exc)) or attempt == 9:
                    raise
                time.sleep(3)
        self.times["confirmed"] = time.time()
        if result["state"] != "done":
            raise RpcError(f"payment {result['state']}")
        page = self.get(result["landing_route"])  # -> /shop/confirmation
        return PageForms(page.text).found.get("licenses") or {}

    def wait_for_licenses(self, section, stop):
        """The confirmation page's widget: refresh 2 s later, then 1.5 times later each time."""
        delay, done = 2.0, section.get("data-done") == "1"
        route = f"/my/orders/{section.get('data-order-id')}/esd_licenses"
        while not done and not stop.wait(delay):
            result = self.rpc(route, {"access_token": section.get("data-access-token")})
            done = result["done"]
            delay = min(delay * 1.5, 30)
        if done:
            self.times["page_done"] = time.time()

    def run(self, run, barrier, stop):
        try:
            barrier.wait()
            section = self.checkout(run)
            self.wait_for_licenses(section, stop)
        except Exception as exc:  # reported: a customer who could not check out
            self.errors.append(f"{self.last}: {type(exc).__name__}: {str(exc)[:300]}")


# ---------------------------------------------------------------------- the database, watched
class Watcher:
    """Polls the database every ``period`` seconds: when each license is first seen delivered,
    when its email is first seen queued (and the timestamps of the transactions that did it)."""

    QUERY = """
        SELECT a.id, a.name, a.sale_order_id, a.sync_status, a.welcome_pending,
               a.invoice_line_id IS NOT NULL, a.write_date,
               m.id, m.create_date
          FROM esd_asset a LEFT JOIN mail_mail m ON m.esd_asset_id = a.id
         WHERE a.id > %s
    """

    def __init__(self, cluster, after_id, period=0.05):
        import psycopg2  # noqa: PLC0415 - Odoo's dependency, in .venv once Odoo is found

        self.conn = psycopg2.connect(**cluster.dsn)
        self.conn.autocommit = True
        self.after_id, self.period = after_id, period
        self.licenses, self.polls = {}, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        with self.conn.cursor() as cr:
            while not self.stop.is_set():
                cr.execute(self.QUERY, (self.after_id,))
                seen = time.time()
                self.polls += 1
                for row in cr.fetchall():
                    self.record(seen, *row)
                self.stop.wait(self.period)

    def record(self, seen, asset_id, name, order_id, status, pending, invoiced, *rest):
        written, mail_id, mail_created = rest
        lic = self.licenses.setdefault(
            asset_id,
            # First seen: the order's confirmation committed (it creates the licenses).
            {"name": name, "order_id": order_id, "seen": seen, "mails": {}},
        )
        if status == "synchronized" and "delivered_seen" not in lic:
            lic["delivered_seen"] = seen
            # Nothing but the delivery wrote it yet: write_date is its transaction's start.
            if pending and not invoiced:
                lic["provision_started"] = epoch(written)
        if mail_id and mail_id not in lic["mails"]:
            lic["mails"][mail_id] = {"seen": seen, "created": epoch(mail_created)}

    def close(self):
        self.stop.set()
        self.thread.join()
        self.conn.close()


def epoch(utc_naive):
    return utc_naive.replace(tzinfo=timezone.utc).timestamp() if utc_naive else None


# ---------------------------------------------------------------------- figures
def percentiles(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return {"n": 0}

    def pick(share):
        return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]

    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2),
        "p95": round(pick(0.95), 2),
        "max": round(values[-1], 2),
    }


def cpu_with_children(pid):
    """CPU seconds of a process and of the children it waited for (wkhtmltopdf, say)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")


def process_cpu(cluster, name):
    """CPU seconds of a prefork server's processes by role (HTTP workers, cron workers, other)."""
    import psutil  # noqa: PLC0415 - Odoo's dependency

    master = psutil.Process(cluster.servers[name].pid)
    roles = {"http": 0.0, "cron": 0.0, "other": cpu_seconds(master.pid)}
    for child in master.children():
        with contextlib.suppress(psutil.Error):
            # Cron workers renice themselves to 10; the longpolling process runs "gevent".
            role = "cron" if child.nice() > 0 else "http"
            role = "other" if "gevent" in child.cmdline() else role
            roles[role] += cpu_with_children(child.pid)
    return roles


class Run:
    """One burst of customers: their checkouts, what the database and the sink saw."""

    def __init__(self, cluster, sink, args, base, product, run):
        self.cluster, self.sink, self.args, self.run = cluster, sink, args, run
        self.after = cluster.scalar("SELECT COALESCE(max(id), 0) FROM esd_asset")
        self.crons_after = cluster.scalar("SELECT COALESCE(max(id), 0) FROM ir_cron_progress")
        quantities = [int(q) for q in args.quantities.split(",")]
        self.customers = [
            Customer(base, index, *product, quantities[index % len(quantities)], cluster.country)
            for index in range(args.customers if run != "warmup" else args.warmup)
        ]
        self.stop = threading.Event()

    def go(self):
        barrier = threading.Barrier(len(self.customers) + 1)
        threads = [
            threading.Thread(target=c.run, args=(self.run, barrier, self.stop), daemon=True)
            for c in self.customers
        ]
        for thread in threads:
            thread.start()
        self.watcher = Watcher(self.cluster, self.after)
        cpu_before = process_cpu(self.cluster, "shop")
        pg_before, machine_before = postgres_cpu(), machine_cpu()
        barrier.wait()
        self.started = time.time()
        deadline = self.started + self.args.timeout
        while time.time() < deadline:
            time.sleep(0.5)
            if self.all_emails_in(threads):
                break
        self.finished = time.time()
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        time.sleep(3)  # a doubled email would come within a cron round of the first one
        self.watcher.close()
        cpu_after = process_cpu(self.cluster, "shop")
        busy = [a - b for a, b in zip(machine_cpu(), machine_before, strict=True)]
        self.cpu = {role: round(cpu_after[role] - cpu_before[role], 1) for role in cpu_after}
        self.cpu["postgres"] = round(postgres_cpu() - pg_before, 1)
        self.cpu["machine_busy"] = f"{busy[0] / max(1, busy[1]):.0%} of {os.cpu_count()} cores"

    def all_emails_in(self, threads):
        """Every customer paid or gave up, and each of their licenses' emails arrived."""
        if any(t.is_alive() and "confirmed" not in c.times for t, c in self._pairs(threads)):
            return False
        orders = {c.order_id for c in self.customers if "confirmed" in c.times}
        names = {
            lic["name"] for lic in list(self.watcher.licenses.values()) if lic["order_id"] in orders
        }
        wanted = sum(c.quantity for c in self.customers if "confirmed" in c.times)
        arrived = {mail["license"] for mail in self.sink.since(self.started)}
        return len(names) >= wanted and names <= arrived

    def _pairs(self, threads):
        return zip(threads, self.customers, strict=True)

    def report(self, crons):
        paid = [c for c in self.customers if "confirmed" in c.times]
        t0 = {c.order_id: c.times["paid"] for c in paid}
        emails = [mail for mail in self.sink.since(self.started) if mail["license"]]
        by_license = {}
        for mail in emails:
            by_license.setdefault(mail["license"], []).append(mail["arrival"])
        progress = self.cluster.query(
            "SELECT cron_id, create_date, done FROM ir_cron_progress WHERE id > %s ORDER BY id",
            (self.crons_after,),
        )
        mail_calls = sorted(epoch(c) for cron, c, _ in progress if cron == crons["mail"])
        provision_calls = sorted(
            epoch(c) for cron, c, done in progress if cron in crons["provision"] and done
        )
        rows, stages = [], {key: [] for key in STAGES}
        for lic in self.watcher.licenses.values():
            if lic["order_id"] not in t0:
                continue
            start, arrivals = t0[lic["order_id"]], by_license.get(lic["name"], [])
            mails = sorted(m["seen"] for m in lic["mails"].values())
            welcome = min((m["created"] for m in lic["mails"].values()), default=None)
            delivered = lic.get("delivered_seen")
            provision = lic.get("provision_started") or latest(provision_calls, delivered)
            arrival = min(arrivals, default=None)
            mail_call = latest(mail_calls, arrival)
            row = {
                "license": lic["name"],
                "order_id": lic["order_id"],
                "emails": len(arrivals),
                "time_to_key_s": arrival and arrival - start,
                "confirmed_to_key_s": arrival and arrival - lic["seen"],
            }
            points = [
                start,
                lic["seen"],
                provision,
                delivered,
                welcome,
                mails and mails[0],
                mail_call,
                arrival,
            ]
            for key, begin, end in zip(STAGES, points, points[1:], strict=False):
                if begin and end:
                    stages[key].append(end - begin)
            # The license's path, in seconds since the burst began.
            row["timeline_s"] = [p and round(p - self.started, 2) for p in points]
            rows.append(row)
        customers_failed = [c.errors[0] for c in self.customers if c.errors]
        ttk = [row["time_to_key_s"] for row in rows]
        return {
            "customers": len(self.customers),
            "paid": len(paid),
            "customer_errors": customers_failed,
            "licenses": len(rows),
            "emails_received": sum(row["emails"] for row in rows),
            "licenses_without_email": sum(1 for row in rows if not row["emails"]),
            "licenses_with_several_emails": sum(1 for row in rows if row["emails"] > 1),
            "emails_of_unknown_licenses": len(
                [m for m in emails if m["license"] not in {r["license"] for r in rows}]
            ),
            "other_emails": len([m for m in self.sink.since(self.started) if not m["license"]]),
            "time_to_key_s": percentiles(ttk),
            "order_confirmed_to_key_s": percentiles([row["confirmed_to_key_s"] for row in rows]),
            "stages_s": {key: percentiles(values) for key, values in stages.items()},
            "checkout_s": percentiles([c.times["paid"] - c.times["start"] for c in paid]),
            # The payment status poll that confirms the order: in an HTTP worker, then waiting.
            "payment_poll_s": percentiles(
                [c.times["confirmed"] - c.times["poll_sent"] for c in paid]
            ),
            "payments_spread_s": round(
                max(t0.values(), default=0) - min(t0.values(), default=0), 1
            ),
            "confirmations_spread_s": round(
                max(c.times["confirmed"] for c in paid) - min(c.times["confirmed"] for c in paid),
                1,
            )
            if paid
            else 0,
            "page_saw_delivery_s": percentiles(
                [
                    c.times["page_done"] - c.times["confirmed"]
                    for c in paid
                    if "page_done" in c.times
                ]
            ),
            "http_requests": sum(c.requests for c in self.customers),
            "wall_s": round(self.finished - self.started, 1),
            "cpu_s": self.cpu,
            "db_polls": self.watcher.polls,
            "timelines": {
                "points": ["paid", *(stage.split("_to_", 1)[1] for stage in STAGES)],
                "licenses": sorted(
                    ([row["license"], row["order_id"], *row["timeline_s"]] for row in rows),
                    key=lambda row: row[2],
                ),
            },
        }


STAGES = (
    "paid_to_order_confirmed",
    "order_confirmed_to_provisioning_call",
    "provisioning_call_to_delivered_commit",
    "delivered_to_email_cron_call",
    "email_cron_call_to_queued_commit",
    "queued_to_mail_queue_call",
    "mail_queue_call_to_smtp",
)


def latest(starts, before):
    """The last of the sorted ``starts`` at or before ``before``."""
    if before is None:
        return None
    found = [start for start in starts if start <= before]
    return found[-1] if found else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2, help="customers before, not counted")
    parser.add_argument("--quantities", default="1", help="licenses per order, in turn: 1,2")
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cron-workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=240, help="seconds a run may take")
    parser.add_argument(
        "--no-order-pdf",
        action="store_true",
        help="order emails without the order's PDF (Odoo renders it with wkhtmltopdf while it "
        "confirms the paid order, in the payment status poll)",
    )
    parser.add_argument(
        "--async-order-emails",
        action="store_true",
        help="sale.async_emails on (Odoo's sale_async_emails): the order's confirmation email "
        "and its PDF are made by a cron, not in the payment status poll that confirms the order",
    )
    parser.add_argument(
        "--base-url-self",
        action="store_true",
        help="web.base.url set to the server, so that wkhtmltopdf fetches the PDF's styles from "
        "it (by default, a new database's http://localhost:8069, where nothing answers: the "
        "PDF is made without them); two PDFs at once can then hold both HTTP workers, each "
        "waiting for a worker to serve its styles, until Odoo kills them (limit_time_real)",
    )
    parser.add_argument("--logs", default=HERE.parent / ".build" / "logs" / "checkout", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # the servers stopped all the same
    shutil.rmtree(args.logs, ignore_errors=True)
    cluster = Cluster(args.logs)
    shim = gevent_metadata_shim(args.logs / "gevent-shim")
    if shim:
        print(f"  gevent's requirements are invisible to pkg_resources: metadata in {shim}")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(shim.resolve()), os.environ.get("PYTHONPATH")])
        )
    sink = simulator_smtp.SmtpSink(describe=welcome_license)
    report = {
        "order_pdf": not args.no_order_pdf,
        "async_order_emails": args.async_order_emails,
        "base_url_self": args.base_url_self,
        "cpu_count": os.cpu_count(),
        "latency_ms": args.latency_ms,
        "http_workers": args.workers,
        "cron_workers": args.cron_workers,
    }
    try:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        options = {"ESD_NO_ORDER_PDF": "1"} if args.no_order_pdf else {}
        if args.async_order_emails:
            options["ESD_ASYNC_ORDER_EMAILS"] = "1"
        if args.base_url_self:
            options["ESD_BASE_URL"] = base
        out = cluster.shell(SETUP, ESD_SIM_CONFIG=cluster.sim_config, **options)
        lines = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith("BENCH-"))
        product_id, product_url = lines["BENCH-PRODUCT"].split()
        named = dict(item.split("=") for item in lines["BENCH-CRONS"].split())
        crons = {
            "mail": int(named.pop("mail.ir_cron_mail_scheduler_action")),
            "provision": {int(cron_id) for cron_id in named.values()},
        }
        cluster.country = cluster.query(
            "SELECT c.id, s.id FROM res_country c JOIN res_country_state s "
            "ON s.country_id = c.id WHERE c.code = 'US' AND s.code = 'NY'"
        )[0]
        cluster.sim.clear_faults()
        cluster.sim.faults(latency_ms=args.latency_ms)
        server = cluster.start(
            "shop",
            cron_threads=args.cron_workers,
            log_level="info",
            workers=args.workers,
            extra=["--smtp", "127.0.0.1", "--smtp-port", sink.port],
            http_port=port,
        )
        wait_up([server], logs=args.logs)
        product = (int(product_id), product_url)
        for name in ("warmup", "measured")[0 if args.warmup else 1 :]:
            burst = Run(cluster, sink, args, base, product, name)
            burst.go()
            report[name] = burst.report(crons)
            figures = report[name]
            print(
                f"  {name}: {figures['paid']} of {figures['customers']} customers paid, "
                f"{figures['emails_received']} license emails for {figures['licenses']} licenses, "
                f"time to key {figures['time_to_key_s']}, {figures['wall_s']} s",
                flush=True,
            )
    finally:
        cluster.stop_all(prefork=True)
        sink.shutdown()
    path = args.logs / "report.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"  report (every license's timeline): {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
