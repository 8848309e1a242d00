"""One provisioning cron call: batches of licenses claimed, ordered from CIS, recorded and
committed, each in a transaction of its own, the next batch ordered while the previous one is
recorded and committed.

A batch claims the rows of its orders, then their licenses (``esd_jobs.lock_orders_then_licenses``):
one order's licenses are worked on by one transaction at a time. Its licenses are ordered in
the pool of ``provisioning.Orderer`` (HTTP only, each request on the instance's pace) and each
answer is recorded in this thread as it arrives, under one savepoint for the batch. Two batches
are claimed at a time, on two cursors: while this thread records and commits one, the pool
orders the other; the next one is claimed on the cursor the first leaves and queued behind it,
and only then are the first one's orders invoiced, on a third cursor. The pool never waits for
the commit, the invoicing or the claim of its caller: during the invoicing, the longest of them,
two batches are queued. Each order's invoice is committed alone, and the orders a previous call
left to invoice are invoiced one after each batch. When a run's last batch completes several
orders, the provisioning crons are woken first, so that idle workers invoice some of them.

Every answer is kept until its batch is committed: a batch rolled back by a concurrent update
is claimed again and recorded from those answers, without ordering it again (no second pace
slot; CIS would give the same licenses for the same idempotency keys anyway).
"""

import collections
import logging
import time
import uuid

from ..microsoft_esd import provisioning
from . import esd_jobs

_logger = logging.getLogger(__name__)

# A cron call claims new batches for this long, then finishes those in flight and returns; if
# licenses remain due it asks for a new run of its cron at once (see _cron_provision).
PIPELINE_SECONDS = 10.0
# A batch claims what the pool ordered in this many seconds in the previous batch (between one
# and eight times the base size): the fewer batches, the less the pool waits between them.
BATCH_SECONDS = 2.0
MAX_BATCH_FACTOR = 8
STILL_DUE = "sync_status = 'unsynchronised' AND active AND state = 'active' AND id = ANY(%s)"
# What the runs of this process did that no record shows: licenses recorded again from their
# answers after a concurrent update (read by the tests).
COUNTS = collections.Counter()
# The batch size the last pipelined run of this process learned, and when, per database, base
# size and the instances' paces (CIS Requests per Second): the next run (the next cron call, a
# window later) starts from it instead of the base size, whose first two batches the pool would
# order before this thread has claimed a third. Older than LEARNED_SIZE_SECONDS it is forgotten.
LEARNED_SIZES = {}
LEARNED_SIZE_SECONDS = 30.0
PACES = "SELECT DISTINCT rate_limit FROM esd_instance WHERE active ORDER BY 1"


class LicenseBatch:
    """One claimed batch: the environment of its transaction, its licenses, the answers CIS
    gave them (kept until the batch is committed) and how far its recording went."""

    def __init__(self, env, assets):
        self.env = env
        self.assets = assets
        self.http = None  # provisioning.Batch
        self.savepoint = None
        self.answers = {}  # license id: Outcome, as they arrived
        self.error = None  # a recording error: the batch is recorded again license by license
        self.conflict = None  # a concurrent update: the batch is recorded again, afresh


class ProvisioningRun:
    """Batches of due licenses for up to ``seconds`` (or ``max_batches``), committed one by
    one with ``commit`` (a cron; a test's or a shell's transaction is not committed), the next
    one ordered on a second cursor while the previous one is recorded with ``pipelined``."""

    def __init__(
        self,
        env,
        commit=True,
        pipelined=True,
        seconds=None,
        max_batches=None,
        defer_invoicing=False,
    ):
        self.env = env
        self.commit = commit and esd_jobs.can_commit()
        # A second cursor sees committed data only: never beside a test's own transaction.
        self.pipelined = pipelined and self.commit and not env.registry.in_test_mode()
        self.deadline = time.monotonic() + (PIPELINE_SECONDS if seconds is None else seconds)
        # A cron call's batches that finish after its window leave their invoicing to the
        # next call (or to the end of this one when nothing is left to order).
        self.defer_invoicing = defer_invoicing
        # Uncommitted (a test's transaction, a shell), a call is one batch, as it always was.
        self.max_batches = max_batches if self.commit else 1
        Asset = env["esd.asset"]
        self.base_size = self.size = Asset._esd_batch_size()
        self.size_key = None
        if self.pipelined:
            env.cr.execute(PACES)
            paces = tuple(row[0] for row in env.cr.fetchall())
            self.size_key = (env.cr.dbname, self.base_size, paces)
            learned = LEARNED_SIZES.get(self.size_key)
            if learned and time.monotonic() - learned[1] < LEARNED_SIZE_SECONDS:
                self.size = learned[0]
        self.parallelism = Asset._esd_parallelism()
        # The orders a previous call left to invoice (pipelined): one of them is invoiced after
        # each batch, with the batch's own orders.
        self.left = []
        self.done = 0
        self.batches = 0

    # ------------------------------------------------------------------ the run
    def run(self):
        """Provision batch after batch; returns how many licenses were processed."""
        second = self.env.registry.cursor() if self.pipelined else None
        # Pipelined, orders are invoiced on a cursor of their own once the next batch is queued.
        invoicing = self.env.registry.cursor() if self.pipelined else None
        free = [self.env] + ([self.env(cr=second)] if second is not None else [])
        try:
            with provisioning.Orderer(self.parallelism) as orderer:
                if self.defer_invoicing and not self.pipelined:
                    self._invoice_left(self.env)
                current = self._start(free, orderer)
                following = self._start_next(current, free, orderer)
                if self.defer_invoicing and self.pipelined:
                    # While the pool orders the first two batches.
                    self._invoice_left(self.env(cr=invoicing))
                while current:
                    # The pool orders the following batch while this one is finished; the
                    # one after it is claimed on the cursor this one leaves free and queues
                    # behind it before this one's orders are invoiced, so the pool never
                    # waits for this thread's commit, invoicing or claim.
                    self._finish(current)
                    if invoicing is None:  # one cursor: invoiced before it claims again
                        self._invoice(current, current.env, [following])
                    free.append(current.env)
                    if following is None and self._more():
                        following = self._start(free, orderer)
                    queued = self._start_next(following, free, orderer)
                    if invoicing is not None:
                        self._invoice(current, self.env(cr=invoicing), [following, queued])
                    current, following = following, queued
        finally:
            for cursor in (second, invoicing):
                if cursor is not None:
                    cursor.rollback()
                    cursor.close()
        return self.done

    def _start_next(self, queued, free, orderer):
        """The batch to queue behind ``queued``, if a cursor is free and time is left."""
        if queued is None or not free or not self._more():
            return None
        return self._start(free, orderer)

    def provision(self, assets):
        """Order and record ``assets``, already claimed by this transaction (no commit)."""
        with provisioning.Orderer(self.parallelism) as orderer:
            batch = self._submit(self.env, assets, orderer)
            if batch:
                self._finish(batch)
                self._invoice(batch, batch.env, [])

    def window_used(self):
        """Whether this run stopped claiming because its time was up (not for lack of work)."""
        return time.monotonic() >= self.deadline

    def _more(self):
        return time.monotonic() < self.deadline and (
            self.max_batches is None or self.batches < self.max_batches
        )

    # ------------------------------------------------------------------ one batch
    def _start(self, free, orderer):
        """Claim a batch on the first free cursor and submit its orders; None when nothing
        is due (or all of it is held by other workers)."""
        env = free[0]
        Asset = env["esd.asset"]
        for _round in range(3):
            try:
                assets = Asset._esd_claim(self.size, fresh=self.commit, cover=self.base_size)
                if not assets:
                    if self.pipelined:
                        # Nothing written: the order rows a vain claim locked are let go, and
                        # the cursor's next reader (the cron, after the run) sees what the
                        # other cursors committed since, not this claim's snapshot.
                        self._commit(env)
                    return None
                ready, synced = assets._esd_before_ordering()
                if synced and self.commit:
                    # The accounts CIS made are kept, and no partner or account row stays
                    # locked through the orders' calls: committed, then claimed again.
                    self._commit(env)
                    self.done += len(assets - ready)
                    continue
            except esd_jobs.CONFLICTS:
                if not (self.commit and esd_jobs.rollback(env)):
                    raise
                continue
            free.remove(env)
            self.batches += 1
            self.done += len(assets)
            return self._submit(env, ready, orderer, claimed=assets)
        return None

    def _submit(self, env, ready, orderer, claimed=None):
        batch = LicenseBatch(env, claimed if claimed is not None else ready)
        orders = ready._esd_orders_by_client()
        ready._esd_prefetch_for_record()
        batch.savepoint = env.cr.savepoint()
        batch.http = orderer.submit(orders, str(uuid.uuid4()))
        return batch

    def _resize(self, batch):
        """The next batch's size: what the pool ordered in BATCH_SECONDS in this one (from
        its first request: a queued batch waited for the one before)."""
        if batch.http.size < self.size:
            return  # a short batch (the last of what is due) says nothing of the pace
        elapsed = time.monotonic() - batch.http.started_at
        if elapsed <= 0:
            return
        wanted = int(batch.http.size * BATCH_SECONDS / elapsed)
        self.size = max(self.base_size, min(wanted, self.base_size * MAX_BATCH_FACTOR))
        if self.size_key:
            LEARNED_SIZES[self.size_key] = (self.size, time.monotonic())

    def _record(self, batch, outcome):
        """Record one answer as it arrives, in the batch's savepoint (kept in any case)."""
        batch.answers[outcome.key] = outcome
        if batch.error or batch.conflict:
            return  # recorded again below, one by one or afresh
        try:
            batch.env["esd.asset"].browse(outcome.key)._esd_record_one(outcome)
        except esd_jobs.CONFLICTS as exc:
            batch.conflict = exc
        except Exception as exc:  # the batch is recorded again license by license
            batch.error = exc

    def _finish(self, batch):
        """Every answer recorded, the batch committed (recorded again afresh from its kept
        answers after a concurrent update)."""
        while not batch.http.done():
            self._record(batch, batch.http.next())
        self._resize(batch)
        env = batch.env
        try:
            if batch.conflict:
                raise batch.conflict
            if not batch.error:
                try:
                    batch.savepoint.close(rollback=False)  # its writes, flushed together
                except esd_jobs.CONFLICTS:
                    raise
                except Exception as exc:  # a write failed: the savepoint was rolled back
                    batch.error = exc
            else:
                batch.savepoint.close(rollback=True)
            if batch.error:
                _logger.info("ESD provisioning: a batch is recorded license by license")
                env["esd.asset"]._esd_record_each(list(batch.answers.values()))
            self._commit(env)
        except esd_jobs.CONFLICTS:
            if not (self.commit and esd_jobs.rollback(env)):
                raise
            self._record_again(batch)

    def _record_again(self, batch):
        """The batch met a concurrent update and was rolled back: its licenses still due are
        claimed again and recorded from the answers kept, without ordering them again."""
        env, ids = batch.env, list(batch.answers)
        Asset = env["esd.asset"]
        for _attempt in range(3):
            try:
                assets = Asset._esd_lock(STILL_DUE, len(ids), fresh=True, params=[ids])
                assets._esd_prefetch_for_record()
                Asset._esd_record_each([batch.answers[asset.id] for asset in assets])
                self._commit(env)
            except esd_jobs.CONFLICTS:
                esd_jobs.rollback(env)
                continue
            COUNTS["recorded_again"] += len(assets)
            _logger.info(
                "ESD provisioning: %s licenses recorded again after a concurrent update, "
                "from the answers CIS gave (not ordered again)",
                len(assets),
            )
            return
        # Left due: ordered again later with the same idempotency keys (the same licenses).
        _logger.info("ESD provisioning: a batch's answers could not be recorded again now")
        Asset._esd_trigger_provisioning()
        self._commit(env)

    def _invoice_left(self, env):
        """The orders a previous call left to invoice (its batches finished after its window
        while licenses were still due): that call ended sooner, and the pace was not left
        unused during these invoices. Pipelined, they are found now, while the pool orders the
        first two batches, and invoiced one after each batch (``_invoice``), so that the pool
        always has a batch queued while they are; otherwise invoiced now."""
        if not self.commit:
            return
        if self.pipelined:
            self.left = env["sale.order"]._esd_ready_to_invoice().ids
            self._commit(env)  # a read: the invoices after it see what is committed since
            return
        try:
            env["sale.order"]._esd_invoice_ready(commit_each=True)
            self._commit(env)
        except esd_jobs.CONFLICTS:  # left to the next batch's invoicing, or the next call's
            esd_jobs.rollback(env)

    def _invoice(self, batch, env, in_flight):
        """The batch's orders whose licenses are now all delivered, invoiced in a transaction
        of ``env`` (while the pool orders the batches ``in_flight``), unless the call's window
        is used and licenses other than those in flight are due: then the next call invoices
        them while its pool orders its first batch. Then the email job is woken: it claims
        the licenses after their order's row, which the invoicing holds until it commits."""
        if not self.commit:
            return
        # Read on ``env``: the batch's own cursor may hold the next batch's claim by now.
        orders = env["esd.asset"].browse(batch.assets.ids).exists().sale_order_id
        if self.defer_invoicing and self.window_used() and self._due_after(env, in_flight):
            orders = orders.browse()
        elif self.left:
            orders |= orders.browse(self.left.pop(0))  # one a previous call left
        try:
            if len(orders) > 1 and not any(in_flight):
                self._share_invoicing(env, orders)
            if orders:
                # Each order committed alone: posting an invoice holds its journal's next
                # number until the transaction ends, for every worker and server.
                env["sale.order"]._esd_invoice_ready(orders, commit_each=True)
            self._trigger_emails(env, batch.answers)
            self._commit(env)
        except esd_jobs.CONFLICTS:  # left to the invoicing at the end of the cron call
            esd_jobs.rollback(env)
            self._trigger_emails(env, batch.answers)
            self._commit(env)

    def _share_invoicing(self, env, orders):
        """The run's last batch completed several orders: the provisioning crons are woken
        (committed) before they are invoiced, so that an idle worker invoices some of them
        beside this one rather than after it; each worker skips the orders another holds."""
        if len(env["sale.order"]._esd_ready_to_invoice(orders)) > 1:
            env["esd.asset"]._esd_trigger_provisioning()
            self._commit(env)

    def _due_after(self, env, in_flight):
        """Whether licenses besides those of the batches ``in_flight`` are due: a next call
        will order them. When none are, the end of the backlog, deferring an invoice would
        only leave it until after the last batch."""
        held = [asset_id for batch in in_flight if batch for asset_id in batch.assets.ids]
        Asset = env["esd.asset"]
        domain = [*Asset._esd_due_domain(), ("id", "not in", held)]
        return bool(Asset.search_count(domain, limit=1))

    def _trigger_emails(self, env, answers):
        """The license emails go in their own cron, woken when this batch commits."""
        if self.commit and any(not outcome.error for outcome in answers.values()):
            esd_jobs.trigger(env, "microsoft_esd.ir_cron_esd_welcome")

    def _commit(self, env):
        if self.commit:
            env.cr.commit()  # pylint: disable=invalid-commit
