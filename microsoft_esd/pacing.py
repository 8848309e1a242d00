"""One pace for every request sent to a CIS instance, shared by all the threads, workers and
servers that call it.

Microsoft limits a channel to so many requests a second. Learning that limit from its 429 answers
wastes it: every refused request waits the same Retry-After and the waiting requests of every
worker come back in the same instant, take the second's quota and are refused again. A
:class:`Pacer` instead gives each request a *slot* and the request waits for it. The slots follow a
:class:`Schedule`: a rate of R requests a second (R at least 1) gives R slots (rounded down) in
each second of the clock, evenly spaced within its first ``1 - GUARD_SECONDS``; a limit counted per
second of the clock then still holds when a request reaches Microsoft up to ``GUARD_SECONDS`` late
(a busy machine, the network), where requests spaced over the whole second would fall into the
next second with its own. A rate under 1 spaces the slots ``1 / R`` seconds apart. No slot is banked
while the pace is idle (no burst). The last slot given lives in a :class:`store <MemoryStore>`: in
memory for one process, in PostgreSQL for Odoo (``esd.instance.pace``), so that every worker and
server of the database draws from one pace. A Retry-After answer *holds* the pace: no slot is given
before it ends, and after it the slots resume in the schedule, without a burst. A request whose
wait ends so late (a busy machine wakes its thread late) that less than half the guard is left
after its second's window takes another slot: sent then, it could be counted in the next second,
on top of that second's own requests.
"""

import collections
import math
import threading
import time

# The end of each clock second in which no slot is given: a request sent in its second's last slot
# may reach CIS this much later and still be counted in that second.
GUARD_SECONDS = 0.2
# Float slack when a slot is compared with the end of its second's window.
_EPSILON = 1e-6
# A request whose wait ended late takes another slot at most this many times, then is sent.
RETAKES = 3

# A slot a store gave: the seconds until it, and the seconds from it to the end of its
# second's window (how late the request may still leave).
Reservation = collections.namedtuple("Reservation", "wait slack")


class Schedule:
    """Where the slots of a rate fall on the clock (seconds since the epoch)."""

    def __init__(self, rate):
        if not rate or rate <= 0:
            raise ValueError(f"a pace needs a rate above 0 requests a second (got {rate})")
        self.rate = float(rate)
        whole = math.floor(self.rate + _EPSILON)
        self.per_second = whole if whole >= 1 else None
        if self.per_second:
            self.interval = (1.0 - GUARD_SECONDS) / self.per_second
        else:
            self.interval = 1.0 / self.rate

    def slot(self, earliest):
        """The first slot at or after ``earliest``."""
        if not self.per_second:
            return earliest
        second = math.floor(earliest)
        # A slot fits when it and one interval after it end within the window: at most
        # per_second slots, interval apart, fit in a second.
        if earliest - second + self.interval > 1.0 - GUARD_SECONDS + _EPSILON:
            return float(second + 1)
        return earliest

    def take(self, next_free, now):
        """(the slot of a request asking at ``now``, the next free slot after it), from the
        next free slot kept by a store (None when none was kept)."""
        slot = self.slot(now if next_free is None else max(next_free, now))
        return slot, slot + self.interval

    def reservation(self, slot, now):
        """The :class:`Reservation` of ``slot`` for a request asking at ``now``."""
        if not self.per_second:
            return Reservation(slot - now, math.inf)
        return Reservation(slot - now, math.floor(slot) + 1.0 - GUARD_SECONDS - slot)


class MemoryStore:
    """The pace of one process: the next free slot, on ``clock`` (the wall clock, since the
    schedule follows its seconds)."""

    def __init__(self, clock=time.time):
        self._clock = clock
        self._lock = threading.Lock()
        self._next = None

    def reserve(self, schedule, max_wait=None):
        """Take the next free slot of ``schedule`` and keep the one after it; its
        :class:`Reservation` (a wait of 0 when it is free now). A slot more than ``max_wait``
        seconds away is not taken (its wait is still returned): a caller that gives up leaves
        it to others."""
        with self._lock:
            now = self._clock()
            slot, following = schedule.take(self._next, now)
            if max_wait is None or slot - now <= max_wait:
                self._next = following
            return schedule.reservation(slot, now)

    def hold(self, seconds):
        """Give no slot for ``seconds`` from now (slots already given are kept)."""
        with self._lock:
            until = self._clock() + seconds
            self._next = until if self._next is None else max(self._next, until)


class Pacer:
    """At most ``rate`` requests a second (see :class:`Schedule`), through ``store``."""

    def __init__(self, rate, store=None, sleep=time.sleep, clock=time.monotonic):
        self.schedule = Schedule(rate)
        self.store = store or MemoryStore()
        self._sleep = sleep
        self._clock = clock  # measures how late a wait ended
        self.retaken = 0  # slots given up because their wait ended too late

    @property
    def rate(self):
        return self.schedule.rate

    def acquire(self, max_wait=None):
        """Wait for this request's slot; False (no wait, and no slot taken) when the slot is
        more than ``max_wait`` seconds away. A wait that ended later than half the guard after
        its second's window takes another slot (RETAKES times at most, then the request goes)."""
        started = self._clock()
        for retake in range(RETAKES + 1):
            asked = self._clock()
            left = None if max_wait is None else max_wait - (asked - started)
            wait, slack = self.store.reserve(self.schedule, left)
            if left is not None and wait > left:
                return False
            if wait > 0:
                self._sleep(wait)
            late = self._clock() - asked - max(wait, 0.0)
            if late <= slack + GUARD_SECONDS / 2 or retake == RETAKES:
                break
            self.retaken += 1
        return True

    def hold(self, seconds):
        """CIS asked to wait ``seconds`` (Retry-After): every later slot starts after it."""
        if seconds and seconds > 0:
            self.store.hold(seconds)
