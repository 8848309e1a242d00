"""Benchmark: resellers order through the API and wait for their license.delivered webhooks.

Run with ``make bench BENCH=api`` (``.venv/bin/python bench/run.py --only api``): a throw-away
database with the addon (no demo data); the CIS simulator with 100 ms of latency on every API
call; ``odoo-bin --workers 2 --max-cron-threads 2`` (prefork: two HTTP workers, two cron worker
processes that run the provisioning, email and webhook crons); a webhook receiver of this
script's own on 127.0.0.1 (the system parameter microsoft_esd.webhook_allow_loopback lets the
server send to it).

4 resellers' systems, each a thread with its own API key, register a webhook endpoint for
license.delivered, then place 5 orders of 50 licenses each, one after the other (20 orders, 1,000
licenses), each with its Idempotency-Key, all four at once. Per license: from the moment its
order's 201 answer came back to the arrival of its license.delivered message at the receiver
(each signature verified with the endpoint's secret). Counted: licenses without a message
(lost), licenses with messages of more than one id (doubled), and the same message received
twice (a redelivery, which the receiver deduplicates on webhook-id).

Writes report.json in its log folder (.build/logs/api, with the server's log); bench/run.py prints
it with its bound. Prints no key and no secret.
"""

# A benchmark: what it prints is its report, not a log.
# pylint: disable=print-used

import argparse
import base64
import hashlib
import hmac
import json
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_checkout import gevent_metadata_shim, percentiles  # noqa: E402
from bench_scaleout import machine_cpu, postgres_cpu, wait_up  # noqa: E402
from cluster import Cluster, free_port  # noqa: E402

SETUP = """
import json, os
from odoo.addons.microsoft_esd.tests.common import connected_instance, office_for_sale

instance = connected_instance(env, os.environ["ESD_SIM_CONFIG"])
product = office_for_sale(env, 100)
env["ir.config_parameter"].set_param("microsoft_esd.webhook_allow_loopback", "1")
env["ir.config_parameter"].set_param("microsoft_esd.api_rate_limit", "100000")
resellers = []
for index in range(int(os.environ["ESD_RESELLERS"])):
    company = env["res.partner"].create({
        "name": f"Bench Reseller {index}", "is_company": True, "esd_role": "reseller",
        "email": f"it@reseller{index}.example", "country_id": env.ref("base.us").id,
    })
    user = env["res.users"].with_context(no_reset_password=True).create({
        "name": f"Bench API {index}", "login": f"bench-api-{index}",
        "groups_id": [(6, 0, [env.ref("base.group_portal").id])],
    })
    user.partner_id.parent_id = company
    env["esd.grant"]._esd_give(user, "api", env.company)
    key = env["res.users.apikeys"].with_user(user).sudo()._generate(None, "bench", None)
    resellers.append(key)
env.cr.commit()
with open(os.environ["ESD_KEYS_FILE"], "w") as keys:
    json.dump({"sku": product.esd_sku, "keys": resellers}, keys)
"""


class Receiver(ThreadingHTTPServer):
    """Records each message's arrival, id and license; checks its signature."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ReceiverHandler)
        self.lock = threading.Lock()
        self.messages, self.secrets, self.bad_signatures = [], [], 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def verified(self, headers, body):
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        for secret in self.secrets:
            key = base64.b64decode(secret.removeprefix("whsec_"))
            digest = hmac.new(key, signed, hashlib.sha256).digest()
            if "v1," + base64.b64encode(digest).decode() in headers["webhook-signature"].split():
                return True
        return False


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        arrival = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        server = self.server
        ok = server.verified(headers, body)
        payload = json.loads(body)
        with server.lock:
            server.bad_signatures += not ok
            server.messages.append(
                {
                    "arrival": arrival,
                    "id": headers["webhook-id"],
                    "type": payload["type"],
                    "license": payload["data"].get("license", {}).get("id"),
                }
            )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


class Reseller:
    """One reseller's system: its API key, its orders and when each was answered."""

    def __init__(self, base, key, sku, orders, quantity):
        self.base, self.sku, self.orders, self.quantity = base, sku, orders, quantity
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.answered, self.errors, self.order_s = {}, [], []

    def post(self, path, body):
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        for attempt in range(5):  # a lost answer: the same request, the same key
            try:
                response = self.http.post(self.base + path, json=body, headers=headers, timeout=300)
                break
            except requests.ConnectionError:
                if attempt == 4:
                    raise
                time.sleep(1)
        if response.status_code != 201:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def register(self, url):
        return self.post("/api/esd/v1/webhooks", {"url": url, "events": ["license.delivered"]})

    def run(self, barrier):
        try:
            barrier.wait()
            for number in range(self.orders):
                sent = time.time()
                order = self.post(
                    "/api/esd/v1/orders",
                    {
                        "reference": f"BENCH-{uuid.uuid4().hex[:8]}-{number}",
                        "lines": [{"sku": self.sku, "quantity": self.quantity}],
                    },
                )
                answered = time.time()
                self.order_s.append(answered - sent)
                for lic in order["licenses"]:
                    self.answered[lic["id"]] = answered
        except Exception as exc:  # reported
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resellers", type=int, default=4)
    parser.add_argument("--orders", type=int, default=5, help="orders per reseller")
    parser.add_argument("--quantity", type=int, default=50, help="licenses per order")
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cron-workers", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=600, help="seconds a run may take")
    parser.add_argument("--logs", default=HERE.parent / ".build" / "logs" / "api", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # the servers stopped all the same
    shutil.rmtree(args.logs, ignore_errors=True)
    cluster = Cluster(args.logs)
    shim = gevent_metadata_shim(args.logs / "gevent-shim")
    if shim:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(shim.resolve()), os.environ.get("PYTHONPATH")])
        )
    receiver = Receiver()
    keys_file = args.logs / "keys.json"
    report = {
        "cpu_count": os.cpu_count(),
        "latency_ms": args.latency_ms,
        "http_workers": args.workers,
        "cron_workers": args.cron_workers,
        "resellers": args.resellers,
        "orders": args.resellers * args.orders,
        "licenses": args.resellers * args.orders * args.quantity,
        "load_average_before": [round(load, 2) for load in os.getloadavg()],
    }
    try:
        cluster.shell(
            SETUP,
            ESD_SIM_CONFIG=cluster.sim_config,
            ESD_RESELLERS=args.resellers,
            ESD_KEYS_FILE=keys_file,
        )
        setup = json.loads(keys_file.read_text())
        keys_file.unlink()
        cluster.sim.clear_faults()
        cluster.sim.faults(latency_ms=args.latency_ms)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = cluster.start(
            "api", cron_threads=args.cron_workers, log_level="info", workers=args.workers,
            http_port=port,
        )  # fmt: skip
        wait_up([server], logs=args.logs)
        hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
        resellers = [
            Reseller(base, key, setup["sku"], args.orders, args.quantity) for key in setup["keys"]
        ]
        for reseller in resellers:
            receiver.secrets.append(reseller.register(hook_url)["secret"])
        barrier = threading.Barrier(len(resellers) + 1)
        threads = [threading.Thread(target=r.run, args=(barrier,), daemon=True) for r in resellers]
        for thread in threads:
            thread.start()
        pg_before, machine_before = postgres_cpu(), machine_cpu()
        barrier.wait()
        started = time.time()
        expected = report["licenses"]
        while time.time() < started + args.timeout:
            time.sleep(0.5)
            with receiver.lock:
                arrived = {m["license"] for m in receiver.messages}
            if len(arrived) >= expected and not any(t.is_alive() for t in threads):
                break
        finished = time.time()
        time.sleep(5)  # a doubled message would come within a cron round of the first one
        for thread in threads:
            thread.join(timeout=60)
        busy = [after - before for after, before in zip(machine_cpu(), machine_before, strict=True)]
        answered = {lic: t for r in resellers for lic, t in r.answered.items()}
        by_license = {}
        with receiver.lock:
            messages = list(receiver.messages)
        for message in messages:
            by_license.setdefault(message["license"], []).append(message)
        delays = [
            min(m["arrival"] for m in by_license[lic]) - t
            for lic, t in answered.items()
            if lic in by_license
        ]
        report.update(
            {
                "orders_answered": sum(len(r.order_s) for r in resellers),
                "order_answer_s": percentiles([s for r in resellers for s in r.order_s]),
                "licenses_ordered": len(answered),
                "webhook_after_order_s": percentiles(delays),
                "first_order_to_last_webhook_s": round(
                    max((m["arrival"] for m in messages), default=started) - started, 2
                ),
                "lost": len([lic for lic in answered if lic not in by_license]),
                "doubled": len(
                    [lic for lic, found in by_license.items() if len({m["id"] for m in found}) > 1]
                ),
                "redelivered": len(messages) - len({m["id"] for m in messages}),
                "unknown_licenses": len([lic for lic in by_license if lic not in answered]),
                "bad_signatures": receiver.bad_signatures,
                "errors": [e for r in resellers for e in r.errors],
                "wall_s": round(finished - started, 1),
                "machine_busy_share": round(busy[0] / busy[1], 2) if busy[1] else None,
                "postgres_cpu_s": round(postgres_cpu() - pg_before, 1),
            }
        )
        print(
            f"  {report['licenses_ordered']} licenses in {report['orders_answered']} orders: "
            f"webhook after the order's answer {report['webhook_after_order_s']}, "
            f"{report['lost']} lost, {report['doubled']} doubled",
            flush=True,
        )
    finally:
        cluster.stop_all(prefork=True)
        receiver.shutdown()
    path = args.logs / "report.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"  report: {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
