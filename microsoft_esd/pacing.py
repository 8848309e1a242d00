"""One pace for every request sent to a CIS instance, shared by all the threads, workers and
servers that call it.

Microsoft limits a channel to so many requests a second. Learning that limit from its 429 answers
wastes it: every refused request waits the same Retry-After and the waiting requests of every
worker come back in the same instant, take the second's quota and are refused again. A
:class:`Pacer` instead gives each request a *slot*, ``1 / rate`` seconds after the previous one
(the generic cell rate algorithm with no burst), and the request waits for its slot. The last slot
given lives in a :class:`store <MemoryStore>`: in memory for one process, in PostgreSQL for Odoo
(``esd.instance.pace``), so that every worker and server of the database draws from one pace. A
Retry-After answer *holds* the pace: no slot is given before it ends, and after it the slots
resume one interval apart, without a burst.
"""

import threading
import time


class MemoryStore:
    """The pace of one process: the next free slot, on ``clock``."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._next = None

    def reserve(self, interval, max_wait=None):
        """Take the next free slot and keep the following one ``interval`` later; the seconds
        until that slot (0 when it is free now). A slot more than ``max_wait`` seconds away is
        not taken (the seconds are still returned): a caller that gives up leaves it to others."""
        with self._lock:
            now = self._clock()
            slot = now if self._next is None else max(self._next, now)
            if max_wait is None or slot - now <= max_wait:
                self._next = slot + interval
            return slot - now

    def hold(self, seconds):
        """Give no slot for ``seconds`` from now (slots already given are kept)."""
        with self._lock:
            until = self._clock() + seconds
            self._next = until if self._next is None else max(self._next, until)


class Pacer:
    """At most ``rate`` requests a second, evenly spaced, through ``store``."""

    def __init__(self, rate, store=None, sleep=time.sleep):
        if not rate or rate <= 0:
            raise ValueError(f"a pace needs a rate above 0 requests a second (got {rate})")
        self.rate = float(rate)
        self.interval = 1.0 / self.rate
        self.store = store or MemoryStore()
        self._sleep = sleep

    def acquire(self, max_wait=None):
        """Wait for this request's slot; False (no wait, and no slot taken) when the slot is
        more than ``max_wait`` seconds away."""
        wait = self.store.reserve(self.interval, max_wait)
        if max_wait is not None and wait > max_wait:
            return False
        if wait > 0:
            self._sleep(wait)
        return True

    def hold(self, seconds):
        """CIS asked to wait ``seconds`` (Retry-After): every later slot starts after it."""
        if seconds and seconds > 0:
            self.store.hold(seconds)
