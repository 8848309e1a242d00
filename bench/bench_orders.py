"""Benchmark: N license orders against the simulator with injected latency.

    python bench/bench_orders.py [--orders 200] [--latency-ms 50] [--parallel 8]

Starts the simulator in its own process, then orders N licenses sequentially and N with P in
parallel through ONE client. Reports wall time against the bound N x latency / parallelism, the
token acquisitions and the TCP connections the simulator accepted. Not a test: figures go into
docs/benchmarks.md.
"""
# pylint: disable=print-used  # a benchmark: what it prints is its report

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from microsoft_esd.client import CisClient  # noqa: E402
from microsoft_esd.config import InstanceConfig  # noqa: E402
from microsoft_esd.simulator import AdminClient  # noqa: E402

PRODUCT = "EP2-06606:en-US"


def start_simulator(state):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "microsoft_esd", "simulator", "--port", "0", "--state", state],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    config = Path(state) / "instance.json"
    while not config.exists():
        if proc.poll() is not None:
            raise SystemExit("the simulator did not start")
        time.sleep(0.05)
    return proc, InstanceConfig.from_file(config)


def run(client, admin, customer, orders, parallel):
    before = admin.stats()
    tokens_before = client.token_acquisitions
    started = time.perf_counter()
    ids = [f"bench-{parallel}-{i}-{time.time_ns()}" for i in range(orders)]

    def order(request_id):
        return client.order_license(PRODUCT, customer, request_id=request_id)

    if parallel == 1:
        results = [order(rid) for rid in ids]
    else:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            results = list(pool.map(order, ids))
    wall = time.perf_counter() - started
    after = admin.stats()
    tokens = {r.licenses[0].token for r in results}
    return {
        "wall_s": round(wall, 3),
        "licenses": len(tokens),
        "token_acquisitions": client.token_acquisitions - tokens_before,
        "tcp_connections": after["connections"] - before["connections"],
        "http_requests": after["requests"] - before["requests"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        proc, config = start_simulator(state)
        try:
            admin = AdminClient(config)
            with CisClient(config, pool_size=args.parallel) as client:
                customer = client.create_account(
                    "bench", "user", "Bench", "b@bench.example"
                ).account_id
                admin.faults(latency_ms=args.latency_ms, paths="orders")
                first_token_connections = admin.stats()["connections"]
                sequential = run(client, admin, customer, args.orders, 1)
                parallel = run(client, admin, customer, args.orders, args.parallel)
                total_tokens = client.token_acquisitions
        finally:
            proc.terminate()
            proc.wait()
    latency = args.latency_ms / 1000
    sequential["bound_s"] = round(args.orders * latency, 3)
    parallel["bound_s"] = round(args.orders * latency / args.parallel, 3)
    for result in (sequential, parallel):
        result["ratio_to_bound"] = round(result["wall_s"] / result["bound_s"], 2)
    report = {
        "machine": f"{platform.node()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "orders": args.orders,
        "latency_ms": args.latency_ms,
        "parallel": args.parallel,
        "connections_before_orders": first_token_connections,
        "token_acquisitions_whole_run": total_tokens,
        "sequential": sequential,
        "parallel_run": parallel,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
