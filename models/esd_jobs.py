"""The transaction discipline of the addon's crons, in one place.

Business methods never commit. A cron entry point claims one batch (Odoo's cron runner calls it
again while work remains, up to 10 times, then reschedules it at once), works each record under
its own savepoint with :func:`each_in_savepoint`, reports its progress to the runner and commits
with :func:`commit`. A serialization failure is never swallowed by a savepoint: it ends the
transaction, whose work is claimed again by the next call.
"""

import logging
import threading

import psycopg2.errors

_logger = logging.getLogger(__name__)


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
        except psycopg2.errors.TransactionRollbackError:
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


def trigger(env, xmlid, at=None):
    """Run the cron of ``xmlid`` now, or at ``at``."""
    env.ref(xmlid).sudo()._trigger(at)
