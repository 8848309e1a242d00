"""The transaction discipline of the addon's crons, in one place.

Business methods never commit. A cron entry point claims one batch (Odoo's cron runner calls it
again while work remains, up to 10 times, then reschedules it at once), works each record under
its own savepoint with :func:`each_in_savepoint`, reports its progress to the runner and commits
with :func:`commit`. A serialization failure is never swallowed by a savepoint: it ends the
transaction, whose work is claimed again by the next call.

Every writer of licenses takes its locks in one order: the order's row, then its licenses
(:func:`lock_orders_then_licenses`). A concurrency conflict that a job expects and handles (a
row another worker changed after this transaction's snapshot) is not an error: inside
:func:`expected_conflicts` Odoo's ``bad query`` line for it is not logged, in this thread only;
any other failing query, and the same conflict anywhere else, is still logged.
"""

import contextlib
import logging
import threading

import psycopg2.errors

_logger = logging.getLogger(__name__)

# The conflicts a job handles by starting its transaction over (or leaving the work to later).
CONFLICTS = (
    psycopg2.errors.SerializationFailure,
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.LockNotAvailable,
)
_expected = threading.local()


class _ExpectedConflicts(logging.Filter):
    """Drops ``odoo.sql_db``'s "bad query" record of a conflict the current thread expects."""

    def filter(self, record):
        if not getattr(_expected, "depth", 0) or record.levelno < logging.ERROR:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        exc = args[-1] if args else None
        if isinstance(exc, CONFLICTS):
            return False
        if isinstance(exc, psycopg2.errors.UniqueViolation):
            expected = set().union(*getattr(_expected, "unique", [()]))
            return exc.diag.constraint_name not in expected
        return True


_FILTER = _ExpectedConflicts()
logging.getLogger("odoo.sql_db").addFilter(_FILTER)


@contextlib.contextmanager
def expected_conflicts(*unique_constraints):
    """Within this block, this thread's conflicting queries (see CONFLICTS), and its unique
    violations of ``unique_constraints`` (names), are expected: the caller handles them, Odoo
    does not log them as errors. Thread-safe (unlike mute_logger, which mutes a logger for
    every thread)."""
    _expected.depth = getattr(_expected, "depth", 0) + 1
    if not hasattr(_expected, "unique"):
        _expected.unique = []
    _expected.unique.append(frozenset(unique_constraints))
    try:
        yield
    finally:
        _expected.unique.pop()
        _expected.depth -= 1


@contextlib.contextmanager
def lock_wait(cr, seconds):
    """Within this block, a lock this transaction waits for raises LockNotAvailable after
    ``seconds`` (none: the server's own timeout); the server's default again after it. Used
    inside a savepoint, whose rollback also undoes the setting when the block raises."""
    if seconds:
        cr.execute("SET LOCAL lock_timeout = %s", [f"{max(1, int(seconds * 1000))}ms"])
    yield
    if seconds:
        cr.execute("SET LOCAL lock_timeout TO DEFAULT")


def is_conflict(exc):
    return isinstance(exc, CONFLICTS)


def can_commit():
    """False in a test's own thread, whose transaction is rolled back at its end (tests that
    need real commits run the crons in threads of their own, with cursors of their own)."""
    return not getattr(threading.current_thread(), "testing", False)


def commit(env):
    """Commit a cron's work so far: what it recorded is kept whatever happens next."""
    if can_commit():
        env.cr.commit()  # pylint: disable=invalid-commit


def rollback(env):
    """Undo a cron's uncommitted work after a serialization failure (re-raised in a test's own
    thread, where there is no transaction of the cron's own to roll back)."""
    if not can_commit():
        return False
    env.cr.rollback()
    return True


def each_in_savepoint(records, work, what, commit_each=False):
    """Call ``work(record)`` for each record under a savepoint of its own; returns the records
    whose work raised (logged with ``what``). A serialization failure is re-raised: the whole
    transaction starts over. With ``commit_each``, each record's work is committed (work with
    effects outside Odoo, such as a CIS call, is never undone by a later record's failure).
    """
    failed = records.browse()
    for record in records:
        try:
            with records.env.cr.savepoint():
                work(record)
        except CONFLICTS:
            raise
        except Exception:  # one record never blocks the others
            _logger.exception("%s %s: %s", record._name, record.id, what)
            failed |= record
        if commit_each:
            commit(records.env)
    return failed


def finish(env, done, remaining):
    """Report a cron call's progress to the runner, then commit."""
    env["ir.cron"]._notify_progress(done=done, remaining=remaining)
    commit(env)


def finish_window(env, done, wake):
    """End a cron call that used its time window while work remains: ``wake()`` asks for a new
    run at once, and the runner is told nothing remains. Odoo's runner would otherwise call the
    job again, up to 10 times in one run, and a run must end within the cron's real-time limit
    (limit_time_real, 120 s by default, counted over every job a cron thread runs in one pass:
    past it a threaded server reloads, a cron worker is killed). One run lasts one window, and
    the other crons go between."""
    wake()
    finish(env, done, 0)


def trigger(env, xmlid, at=None):
    """Run the cron of ``xmlid`` now, or at ``at``."""
    env.ref(xmlid).sudo()._trigger(at)


def lock_orders_then_licenses(
    cr, where, limit, order="id", params=(), group_order="min(id)", cover=None, wait=False
):
    """Ids of up to ``limit`` licenses matching ``where`` (SQL on ``esd_asset``, with
    ``params``), locked ``FOR UPDATE SKIP LOCKED`` after the rows of their sale orders: orders
    first, in ``group_order`` (an aggregate over an order's matching licenses), as many as
    ``cover`` licenses need (``limit`` by default); then their licenses in ``order``. A license
    without an order (imported) is locked alone. Orders and licenses another transaction holds
    are skipped (with ``wait``: waited for)."""
    skip = "" if wait else " SKIP LOCKED"
    params = list(params)
    cover = min(cover or limit, limit)
    cr.execute(
        f"SELECT sale_order_id, count(*) FROM esd_asset WHERE ({where}) "
        f"GROUP BY sale_order_id ORDER BY {group_order} LIMIT %s",
        [*params, max(limit, 1) * 4],
    )
    candidates = cr.fetchall()
    orderless = any(order_id is None for order_id, _count in candidates)
    pending = [(order_id, count) for order_id, count in candidates if order_id is not None]
    locked, covered = [], 0
    while pending and covered < cover:
        chunk, wanted = [], 0
        while pending and covered + wanted < cover:
            chunk.append(pending.pop(0))
            wanted += chunk[-1][1]
        counts = dict(chunk)
        cr.execute(
            f"SELECT id FROM sale_order WHERE id = ANY(%s) ORDER BY id FOR UPDATE{skip}",
            [list(counts)],
        )
        got = [row[0] for row in cr.fetchall()]
        locked += got
        covered += sum(counts[order_id] for order_id in got)
    if not locked and not orderless:
        return []
    cr.execute(
        f"SELECT id FROM esd_asset WHERE ({where}) AND (sale_order_id = ANY(%s)"
        f"{' OR sale_order_id IS NULL' if orderless else ''}) "
        f"ORDER BY {order} LIMIT %s FOR UPDATE{skip}",
        [*params, locked, limit],
    )
    return [row[0] for row in cr.fetchall()]
