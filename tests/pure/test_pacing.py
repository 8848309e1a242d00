"""The shared pace of an instance's CIS requests (microsoft_esd.pacing) and the client under it."""

import itertools
import json
import threading
import time

import pytest
import responses
from test_client_unit import CONFIG, LICENSE, ORDERS, Tokens, answer_429_then_the_order

from microsoft_esd import contract
from microsoft_esd.client import CisClient
from microsoft_esd.errors import UnavailableError
from microsoft_esd.pacing import GUARD_SECONDS, MemoryStore, Pacer, Schedule


class Clock:
    """A clock that only moves when the pacer sleeps (or the test moves it)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def paced(rate, clock, sleep=None):
    return Pacer(rate, MemoryStore(clock), sleep=sleep or clock.sleep, clock=clock)


def late_once(clock, late):
    """A sleep that wakes ``late`` seconds after its time once (a busy machine), then on time."""
    lateness = [late]

    def sleep(seconds):
        clock.sleep(seconds + (lateness.pop() if lateness else 0.0))

    return sleep


def test_requests_are_spaced_one_interval_apart_from_the_first_free_slot():
    clock = Clock()
    pacer = paced(10, clock)
    sent = []
    for _ in range(12):
        assert pacer.acquire()
        sent.append(round(clock.now - 1000, 3))
    # 10 a second, 0.08 s apart in the first 0.8 s of each second of the clock
    assert sent == [0.0, 0.08, 0.16, 0.24, 0.32, 0.4, 0.48, 0.56, 0.64, 0.72, 1.0, 1.08]


def test_no_second_of_the_clock_holds_more_than_the_rate_and_its_end_holds_none():
    clock = Clock()
    clock.now = 1000.37  # the first request asks in the middle of a second
    pacer = paced(28.5, clock)
    slots = []
    for _ in range(300):
        pacer.acquire()
        slots.append(clock.now)
    per_second = {}
    for slot in slots:
        per_second[int(slot)] = per_second.get(int(slot), 0) + 1
    # 28 (the rate rounded down) in every whole second the pace was busy: the pace is used,
    # and never exceeded
    counts = [per_second[second] for second in sorted(per_second)]
    assert counts[1:-1] == [28] * (len(counts) - 2)
    assert max(per_second.values()) == 28
    assert max(slot - int(slot) for slot in slots) < 1 - GUARD_SECONDS
    # so a request that reaches CIS up to GUARD_SECONDS late is still counted in its second
    assert all(int(slot + GUARD_SECONDS - 1e-4) == int(slot) for slot in slots)


def test_a_rate_under_one_request_a_second_spaces_its_slots_by_its_interval():
    clock = Clock()
    clock.now = 1000.6
    pacer = paced(0.5, clock)
    sent = []
    for _ in range(3):
        pacer.acquire()
        sent.append(round(clock.now - 1000, 3))
    assert sent == [0.6, 2.6, 4.6]


def test_a_slot_asked_for_in_the_end_of_a_second_moves_to_the_next_second():
    schedule = Schedule(10)
    assert schedule.take(None, 1000.70) == (1000.70, 1000.70 + schedule.interval)
    assert schedule.take(None, 1000.75) == (1001.0, 1001.0 + schedule.interval)
    assert schedule.take(1000.95, 1000.10) == (1001.0, 1001.0 + schedule.interval)


def test_an_idle_pace_does_not_bank_a_burst():
    clock = Clock()
    pacer = paced(10, clock)
    pacer.acquire()
    clock.now += 5  # idle for 5 s: the next request goes at once, the one after waits its turn
    start = clock.now
    pacer.acquire()
    pacer.acquire()
    assert round(clock.now - start, 3) == 0.08


def test_a_retry_after_holds_every_later_slot_then_the_pace_resumes_without_a_burst():
    clock = Clock()
    pacer = paced(10, clock)
    pacer.acquire()  # slot at 0
    pacer.hold(2)
    sent = []
    for _ in range(3):
        pacer.acquire()
        sent.append(round(clock.now - 1000, 3))
    assert sent == [2.0, 2.08, 2.16]
    pacer.hold(0.05)  # shorter than the slots already given: changes nothing
    pacer.acquire()
    assert round(clock.now - 1000, 3) == 2.24


def test_a_slot_beyond_the_wait_allowed_is_refused_without_waiting():
    clock = Clock()
    pacer = paced(1, clock)
    assert pacer.acquire(max_wait=0.5)
    assert not pacer.acquire(max_wait=0.5)  # the next slot is 1 s away
    assert clock.now == 1000.0
    # Refused slots are not taken (issue 29): a burst of callers that give up does not push the
    # pace into the future; the slot 1 s away is still the next one.
    for _ in range(5):
        assert not pacer.acquire(max_wait=0.5)
    clock.now += 1
    start = clock.now
    assert pacer.acquire(max_wait=0.5)
    assert clock.now == start


def test_a_wait_that_ends_late_takes_another_slot_so_no_second_holds_more_than_the_rate():
    clock = Clock()
    store = MemoryStore(clock)
    others = Pacer(10, store, sleep=clock.sleep, clock=clock)  # the other threads of the pace
    sent, busy = [], []

    def busy_sleep(seconds):
        """Wakes on time, unless the machine is busy: then 0.5 s late, while the other
        threads, woken in time, send in the first slots of the next second."""
        clock.sleep(seconds)
        if busy:
            busy.pop()
            target = clock.now + 0.5
            for _ in range(3):
                assert others.acquire()
                sent.append(round(clock.now, 3))
            clock.now = target

    pacer = Pacer(10, store, sleep=busy_sleep, clock=clock)
    for _ in range(9):  # 1000.0 to 1000.64, each in its slot
        assert pacer.acquire()
        sent.append(round(clock.now, 3))
    busy.append(True)
    # The slot of 1000.72 (the last of its second), woken at 1001.22: sent then, it would be an
    # 11th request in second 1001. It takes the next free slot, 1001.24, instead.
    assert pacer.acquire()
    sent.append(round(clock.now, 3))
    assert sent[-1] == 1001.24
    assert pacer.retaken == 1
    while clock.now < 1002:  # the others fill the rest of 1001
        assert others.acquire()
        sent.append(round(clock.now, 3))
    per_second = {}
    for moment in sent:
        per_second[int(moment)] = per_second.get(int(moment), 0) + 1
    assert per_second[1001] == 10
    assert max(per_second.values()) == 10


def test_a_wait_that_ends_late_within_its_seconds_window_keeps_its_slot():
    clock = Clock()
    pacer = paced(10, clock, sleep=late_once(clock, 0.3))
    assert pacer.acquire()  # 1000.0, no wait
    assert pacer.acquire()  # the slot of 1000.08, woken at 1000.38: still early in 1000
    assert round(clock.now - 1000, 3) == 0.38
    assert pacer.retaken == 0


def test_a_late_wait_takes_another_slot_only_within_the_wait_allowed():
    clock = Clock()
    pacer = paced(1, clock, sleep=late_once(clock, 1.5))
    assert pacer.acquire()  # 1000.0
    clock.now = 1000.5
    # The slot of 1001.0, woken at 1002.5: the next one (1003.0) is 2.5 s after the request
    # asked, beyond the 2 s it may wait.
    assert not pacer.acquire(max_wait=2.0)
    assert pacer.retaken == 1


def test_threads_share_one_pace():
    """Four threads on the real clock and sleep draw distinct slots from one store.

    The slots the store gave are recorded where it decides them (its clock's reading plus the
    wait), not when each thread wakes: a busy machine wakes threads late and together, which
    says nothing about the pace."""
    readings = threading.local()

    def clock():
        readings.now = time.time()
        return readings.now

    class Slow(Schedule):
        def take(self, next_free, now):
            taken = super().take(next_free, now)
            time.sleep(0.0005)  # other threads run here: only the store's lock keeps them out
            return taken

    pacer = Pacer(200, MemoryStore(clock))  # 40 requests take about 0.2 s
    pacer.schedule = Slow(200)
    slots = []
    lock = threading.Lock()
    reserve = pacer.store.reserve

    def recorded(schedule, max_wait=None):
        reservation = reserve(schedule, max_wait)
        with lock:
            slots.append(readings.now + reservation.wait)
        return reservation

    pacer.store.reserve = recorded

    def send():
        for _ in range(10):
            pacer.acquire()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    slots.sort()
    # one slot a request (and one more for each slot given up by a thread woken too late)
    assert len(slots) == 40 + pacer.retaken
    interval = pacer.schedule.interval
    # never two requests in one slot: each slot at least one interval after the one before (to
    # a float of time.time()'s precision)
    assert min(b - a for a, b in itertools.pairwise(slots)) >= interval - 1e-6
    # and no slot in the guard at the end of a second (200 slots in its first 0.8 s)
    assert max(slot % 1 for slot in slots) <= 1.0 - GUARD_SECONDS - interval + 1e-6


def test_a_rate_of_zero_is_refused():
    with pytest.raises(ValueError):
        Pacer(0)


@responses.activate
def test_the_client_waits_for_its_slot_and_a_429_holds_the_pace_for_every_request():
    clock = Clock()
    pacer = paced(4, clock)
    sleeps = []
    answer_429_then_the_order()
    with CisClient(
        CONFIG, token_provider=Tokens(), pacer=pacer, sleep=sleeps.append, rng=lambda: 0.5
    ) as client:
        order = client.order_license("P1", "A1", request_id="R1")
    assert order.licenses[0].license_id == "L1"
    # the client itself slept nothing: the pacer held the pace 3 s and gave the retry the slot
    # after it
    assert sleeps == []
    assert round(clock.now - 1000, 3) == 3.0
    assert [c.request.headers[contract.HEADER_REQUEST_ID] for c in responses.calls] == ["R1"] * 2
    # the next request of any caller also comes after the hold, one interval later (4 a
    # second in its first 0.8 s: 0.2 s)
    pacer.acquire()
    assert round(clock.now - 1000, 3) == 3.2


class SlowTokens(Tokens):
    """A token whose first fetch takes ``seconds`` of the clock (a request of its own)."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def get(self):
        if self.current is None:
            self.clock.sleep(self.seconds)
        return super().get()


@responses.activate
def test_the_client_fetches_its_token_before_its_slot_so_the_request_leaves_in_it():
    clock = Clock()
    clock.now = 1000.5
    pacer = paced(10, clock)
    sent_at = []
    body = json.dumps({"orderId": "O1", "licenses": [LICENSE]})

    def answer(_request):
        sent_at.append(clock.now)
        return 201, {}, body

    responses.add_callback(responses.POST, ORDERS, callback=answer)
    with CisClient(CONFIG, token_provider=SlowTokens(clock, 0.4), pacer=pacer) as client:
        client.order_license("P1", "A1", request_id="R1")
    # The token took 1000.5 to 1000.9; the slot was taken then (in 1001's window, at 1001.0),
    # not at 1000.5 and left 0.4 s late, at the end of second 1000.
    assert sent_at == [1001.0]
    assert pacer.retaken == 0


@responses.activate
def test_a_slot_beyond_the_deadline_fails_at_once_as_a_transient_error():
    clock = Clock()
    pacer = paced(0.01, clock)  # one request every 100 s
    pacer.acquire()
    with CisClient(CONFIG, token_provider=Tokens(), pacer=pacer, deadline=60) as client:
        with pytest.raises(UnavailableError) as info:
            client.order_license("P1", "A1", request_id="R1")
    assert info.value.transient
    assert "pace of 0.01 requests a second" in str(info.value)
    assert len(responses.calls) == 0
