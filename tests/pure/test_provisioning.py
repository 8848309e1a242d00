"""Provisioning rules, and bounded-parallel ordering against the simulator."""

import datetime
import random
import threading
import time

import pytest
from conftest import PRODUCT

from microsoft_esd import provisioning as prov
from microsoft_esd.errors import UnavailableError, ValidationError


def test_license_count_accepts_whole_quantities_only():
    assert prov.license_count(3) == 3
    assert prov.license_count(2.0) == 2
    for bad in (0, -1, 1.5, None):
        with pytest.raises(ValueError, match="whole quantity"):
            prov.license_count(bad)


def test_retry_schedule_is_capped_and_jittered():
    rng = random.Random(7)
    for attempt, ceiling in ((1, 60), (2, 120), (3, 240), (6, 1800), (40, 1800)):
        delays = {prov.retry_delay(attempt, rng=rng) for _ in range(200)}
        assert min(delays) >= ceiling / 2 and max(delays) <= ceiling, attempt
        assert len(delays) > 10, "licenses held back by an outage come back spread out"


def test_transient_errors_are_retried_for_the_whole_window():
    start = datetime.datetime(2026, 12, 1, 8, 0)
    hour = datetime.timedelta(hours=1)
    assert prov.keeps_retrying(None, start) and prov.keeps_retrying(False, start)
    assert prov.keeps_retrying(start, start + datetime.timedelta(minutes=20))  # the old limit
    assert prov.keeps_retrying(start, start + 23 * hour)
    assert not prov.keeps_retrying(start, start + 24 * hour)
    assert prov.keeps_retrying(start, start + 47 * hour, window_hours=48)
    assert UnavailableError("x").transient and not ValidationError("x").transient


def test_order_all_keeps_the_order_and_isolates_failures(make_client, admin, customer):
    client = make_client(pool_size=8)
    jobs = [prov.Job(i, PRODUCT, customer.account_id, request_id=f"pa-{i}") for i in range(6)]
    jobs[3] = prov.Job(3, "NO-SUCH:en-US", customer.account_id, request_id="pa-3")
    outcomes = prov.order_all(client, jobs, parallelism=4)
    assert [o.key for o in outcomes] == list(range(6))
    assert outcomes[3].error is not None and outcomes[3].license is None
    tokens = {o.license.token for o in outcomes if o.order}
    assert len(tokens) == 5
    # Running the same jobs again returns the same licenses: nothing is ordered twice.
    again = prov.order_all(client, jobs, parallelism=4)
    assert {o.license.token for o in again if o.order} == tokens


def test_order_all_hands_each_outcome_to_the_calling_thread_as_it_arrives(
    make_client, admin, customer
):
    client = make_client(pool_size=8)
    jobs = [prov.Job(i, PRODUCT, customer.account_id, request_id=f"oa-{i}") for i in range(6)]
    seen = []
    caller = threading.current_thread()

    def on_outcome(outcome):
        assert threading.current_thread() is caller  # never a pool thread: no cursor there
        seen.append(outcome.key)

    outcomes = prov.order_all(client, jobs, parallelism=4, on_outcome=on_outcome)
    assert sorted(seen) == list(range(6)) and [o.key for o in outcomes] == list(range(6))
    # A callback that raises stops nothing: every job is still ordered, then it is raised.
    before = admin.stats()["licenses"]
    more = [prov.Job(i, PRODUCT, customer.account_id, request_id=f"ob-{i}") for i in range(6)]

    def broken(outcome):
        raise RuntimeError("cannot record")

    with pytest.raises(RuntimeError):
        prov.order_all(client, more, parallelism=4, on_outcome=broken)
    assert admin.stats()["licenses"] == before + 6


class _SlowClient:
    """A client whose orders take ``seconds`` each; records when each one started."""

    def __init__(self, seconds, fail=None):
        self.seconds, self.fail = seconds, fail
        self.started = []
        self.lock = threading.Lock()

    def order_license(self, product_id, customer, reseller, reference, request_id, correlation_id):
        with self.lock:
            self.started.append((request_id, time.monotonic()))
        if request_id == self.fail:
            raise RuntimeError("a bug, not a CIS error")
        time.sleep(self.seconds)
        return request_id


class _GatedClient:
    """A client whose order of ``request_id`` waits until the test opens its gate; records the
    order in which the orders started and when."""

    def __init__(self, request_ids):
        self.gates = {request_id: threading.Event() for request_id in request_ids}
        self.began = {request_id: threading.Event() for request_id in request_ids}
        self.started = []
        self.lock = threading.Lock()

    def order_license(self, product_id, customer, reseller, reference, request_id, correlation_id):
        with self.lock:
            self.started.append((request_id, time.monotonic()))
        self.began[request_id].set()
        assert self.gates[request_id].wait(10), f"{request_id}: the test never opened its gate"
        return request_id


def test_the_orderer_queues_the_next_batch_behind_the_current_one():
    """A batch submitted while another is ordered starts as soon as a thread is free: the
    pool never waits for its caller between two batches."""
    client = _GatedClient([f"a{i}" for i in range(4)] + ["b4", "b5"])
    with prov.Orderer(parallelism=2) as orderer:
        first = orderer.submit(
            [(client, [prov.Job(i, PRODUCT, "c", request_id=f"a{i}") for i in range(4)])]
        )
        assert client.began["a0"].wait(10) and client.began["a1"].wait(10)
        assert not first.all_started.is_set(), "two threads, four jobs: not all started yet"
        second = orderer.submit(
            [(client, [prov.Job(i, PRODUCT, "c", request_id=f"b{i}") for i in range(4, 6)])]
        )
        assert second.started_at is None, "both threads are busy with the first batch"
        opened = time.monotonic()
        for i in range(4):
            client.gates[f"a{i}"].set()
        # The first batch's outcomes are all waiting for the caller, who has taken none: the
        # pool went on with the second batch all the same.
        assert client.began["b4"].wait(10) and client.began["b5"].wait(10)
        assert first.received == 0 and first.all_started.is_set()
        client.gates["b4"].set()
        client.gates["b5"].set()
        keys = set()
        while not first.done():
            keys.add(first.next(timeout=10).key)
        assert keys == {0, 1, 2, 3}
        assert {second.next(timeout=10).key, second.next(timeout=10).key} == {4, 5}
        assert second.done() and second.next(timeout=0) is None
    starts = dict(client.started)
    # Each batch knows when the pool took its first job (a queued batch's pace is measured
    # from there, not from its submission).
    assert first.started_at <= starts["a0"]
    assert opened <= second.started_at <= min(starts["b4"], starts["b5"])


def test_a_batch_hands_a_job_that_raised_to_its_caller():
    client = _SlowClient(0, fail="x1")
    with prov.Orderer(parallelism=2) as orderer:
        batch = orderer.submit(
            [(client, [prov.Job(i, PRODUCT, "c", request_id=f"x{i}") for i in range(2)])]
        )
        results, errors = [], []
        while not batch.done():
            try:
                results.append(batch.next(timeout=1).key)
            except RuntimeError as exc:
                errors.append(str(exc))
        assert results == [0] and errors == ["a bug, not a CIS error"]
    empty = prov.Batch(0)
    assert empty.all_started.is_set() and empty.done()
