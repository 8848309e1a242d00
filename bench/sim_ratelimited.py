"""The CIS simulator with a per-second channel limit, for the scale-out benchmark.

The simulator's own rate faults are a *share* of requests (``rate_limit_rate``) or the next N
(``rate_limit``); Microsoft limits a channel to so many requests per second. This wrapper runs the
unchanged simulator and adds that limit as one more fault, ``rate_limit_per_second`` (R, 0 = off),
set like the others through the admin surface: in each wall-clock second the first R API requests
go through, the others are answered at once 429 with ``Retry-After: 1`` (the simulator's own 429).
The admin ``/stats`` answer gains ``rate_limiter``: requests let through and refused, and the
largest number let through in one second.

    python bench/sim_ratelimited.py --state DIR [--port 0]   (writes DIR/instance.json)
"""

# A benchmark: what it prints is its report, not a log.
# pylint: disable=print-used

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from microsoft_esd.simulator import Simulator
from microsoft_esd.simulator import server as sim_server

# A pause between two requests let through at least this long is counted as a gap (at the
# benchmark's pace of 28.5 requests a second they are 35 ms apart).
GAP_SECONDS = 0.25


class Limiter:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.window, self.in_window = 0, 0
            self.passed, self.refused, self.max_per_second = 0, 0, 0
            self.seconds_refusing = set()
            self.last_passed, self.gaps = None, []

    def allow(self, limit):
        now = int(time.time())
        with self.lock:
            if now != self.window:
                self.window, self.in_window = now, 0
            if limit and self.in_window >= limit:
                self.refused += 1
                self.seconds_refusing.add(now)
                return False
            self.in_window += 1
            self.passed += 1
            moment = time.monotonic()
            if self.last_passed is not None and moment - self.last_passed >= GAP_SECONDS:
                # (its length, the wall-clock time it ended: to find it in the servers' logs)
                self.gaps.append((round(moment - self.last_passed, 3), round(time.time(), 3)))
            self.last_passed = moment
            self.max_per_second = max(self.max_per_second, self.in_window)
            return True

    def stats(self):
        with self.lock:
            return {
                "passed": self.passed,
                "refused_429": self.refused,
                "max_passed_in_one_second": self.max_per_second,
                "seconds_with_429": len(self.seconds_refusing),
                "gaps": list(self.gaps),
            }


LIMITER = Limiter()
sim_server.Faults.FIELDS = (*sim_server.Faults.FIELDS, "rate_limit_per_second")
_clear, _api, _stats = (
    sim_server.Faults.clear,
    sim_server.Handler._api,
    sim_server.Handler.admin_stats,
)


def clear(self):
    _clear(self)
    with self.lock:
        self.values["rate_limit_per_second"] = 0
    LIMITER.reset()


def api(self, channel_id, path, *, committing=False):
    limit = int(self.server.faults.snapshot()["rate_limit_per_second"] or 0)
    if not LIMITER.allow(limit):
        raise sim_server._RateLimited(1)
    return _api(self, channel_id, path, committing=committing)


def admin_stats(self, query):
    send = self._send

    def send_with_limiter(status, payload=None, headers=None, raw=None):
        if status == 200 and isinstance(payload, dict):
            payload = {**payload, "rate_limiter": LIMITER.stats()}
        return send(status, payload, headers, raw)

    self._send = send_with_limiter
    try:
        return _stats(self, query)
    finally:
        del self._send


sim_server.Faults.clear = clear
sim_server.Handler._api = api
sim_server.Handler.admin_stats = admin_stats
sim_server.ROUTES[:] = [
    (method, path, admin_stats if handler is _stats else handler)
    for method, path, handler in sim_server.ROUTES
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--extra-products", type=int, default=0)
    args = parser.parse_args()
    sim = Simulator(args.state, args.port, extra_products=args.extra_products)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"CIS simulator (per-second limit) on {sim.url}", flush=True)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            sim.serve_forever()
    finally:
        sim.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
