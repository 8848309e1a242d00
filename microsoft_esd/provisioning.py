"""Provisioning rules: split quantities, order licenses with bounded parallelism, retry schedule.

The addon claims pending licenses in the database, hands them here as :class:`Job` values (no
record, no cursor crosses a thread) and writes the :class:`Outcome` values back.
"""

import math
import queue
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from .errors import EsdError

DEFAULT_PARALLELISM = 8
# How long transient CIS errors (timeouts, 5xx, 429, CIS unreachable) are retried before a
# license fails: an outage shorter than this heals by itself.
DEFAULT_RETRY_WINDOW_HOURS = 24


@dataclass(frozen=True)
class Job:
    key: int  # the record id, opaque here
    product_id: str
    customer_account_id: str
    reseller_account_id: str = None
    request_id: str = None  # the idempotency key, fixed when the license was created
    external_reference: str = None


@dataclass(frozen=True)
class Outcome:
    key: int
    order: object = None  # contract.Order
    error: EsdError = None

    @property
    def license(self):
        return self.order.licenses[0] if self.order else None


def license_count(quantity):
    """How many licenses (lines of quantity 1) a line of ``quantity`` becomes."""
    if quantity is None or quantity < 1 or not math.isclose(quantity, round(quantity)):
        raise ValueError(
            f"an ESD line needs a whole quantity of at least 1 license (got {quantity})"
        )
    return round(quantity)


def order_one(client, job, correlation_id=None):
    """Order the license of ``job``: its outcome (a CIS error is an outcome, not raised)."""
    try:
        return Outcome(
            job.key,
            order=client.order_license(
                job.product_id,
                job.customer_account_id,
                job.reseller_account_id,
                job.external_reference,
                request_id=job.request_id,
                correlation_id=correlation_id,
            ),
        )
    except EsdError as exc:
        return Outcome(job.key, error=exc)


class Orderer:
    """Orders licenses in one pool of ``parallelism`` threads, batch after batch.

    The jobs of a batch submitted while another batch is being ordered queue behind that
    batch's jobs: the pool (and the instance's pace) goes on ordering while the caller records
    and commits the previous batch. Nothing but HTTP runs in the pool's threads.
    """

    def __init__(self, parallelism=DEFAULT_PARALLELISM):
        self._pool = ThreadPoolExecutor(max_workers=max(1, parallelism))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._pool.shutdown(wait=True)

    def submit(self, orders, correlation_id=None):
        """Order ``orders``, a list of (client, jobs); returns their :class:`Batch`."""
        batch = Batch(sum(len(jobs) for _client, jobs in orders))
        for client, jobs in orders:
            for job in jobs:
                self._pool.submit(batch._order, client, job, correlation_id)
        return batch


class Batch:
    """The outcomes of one submitted batch, in the order they arrive."""

    def __init__(self, size):
        self.size = size
        self.received = 0
        self._started = 0
        self.started_at = None  # time.monotonic() when a thread of the pool took its first job
        self._lock = threading.Lock()
        self._outcomes = queue.SimpleQueue()
        # Set once a thread of the pool took the batch's last job.
        self.all_started = threading.Event()
        if not size:
            self.all_started.set()

    def _order(self, client, job, correlation_id):
        with self._lock:
            self._started += 1
            if self.started_at is None:
                self.started_at = time.monotonic()
            if self._started == self.size:
                self.all_started.set()
        try:
            self._outcomes.put(order_one(client, job, correlation_id))
        except Exception as exc:  # handed to the caller's thread by next()
            self._outcomes.put(exc)

    def done(self):
        """Whether every outcome was taken by :meth:`next`."""
        return self.received >= self.size

    def next(self, timeout=None):
        """The next outcome to arrive, or None after ``timeout`` seconds (None: wait). An
        exception a job raised besides a CIS error is raised here, in the caller's thread."""
        if self.done():
            return None
        try:
            item = self._outcomes.get(timeout=timeout)
        except queue.Empty:
            return None
        self.received += 1
        if isinstance(item, Exception):
            raise item
        return item


def order_all(client, jobs, parallelism=DEFAULT_PARALLELISM, correlation_id=None, on_outcome=None):
    """Order one license per job, at most ``parallelism`` at once; outcomes in the jobs' order.

    ``on_outcome(outcome)``, if given, is called in the calling thread with each outcome as it
    arrives, while the other jobs are still being ordered: the caller records one license
    during the HTTP waits of the others. It should not raise; if it does, the jobs already
    handed to the pool are still ordered and the exception is raised after them.
    """

    def order(job):
        return order_one(client, job, correlation_id)

    if parallelism <= 1 or len(jobs) <= 1:
        outcomes = []
        for job in jobs:
            outcomes.append(order(job))
            if on_outcome:
                on_outcome(outcomes[-1])
        return outcomes
    with ThreadPoolExecutor(max_workers=min(parallelism, len(jobs))) as pool:
        futures = {pool.submit(order, job): index for index, job in enumerate(jobs)}
        outcomes = [None] * len(jobs)
        for future in as_completed(futures):
            outcomes[futures[future]] = future.result()
            if on_outcome:
                on_outcome(outcomes[futures[future]])
        return outcomes


def retry_delay(attempt, base=60, cap=1800, rng=None):
    """Seconds before the job tries a transiently failed license again: 1, 2, 4... minutes,
    capped at 30, each drawn between half and all of it, so the licenses an outage held back
    do not all come back in the same second."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return round((rng or random).uniform(ceiling / 2, ceiling))


def keeps_retrying(first_failure, now, window_hours=DEFAULT_RETRY_WINDOW_HOURS):
    """Whether a license that first failed transiently at ``first_failure`` is still retried
    (none yet, None or False: it is)."""
    if not first_failure:
        return True
    return (now - first_failure).total_seconds() < window_hours * 3600
