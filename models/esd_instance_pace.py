from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED

from odoo import fields, models

# The next free slot of an instance, locked until the caller's short transaction ends, and the
# database's clock (shared by every server). The caller takes the slot, or leaves it to others.
NEXT_SLOT = """
    SELECT next_at, extract(epoch FROM clock_timestamp())
      FROM esd_instance_pace WHERE instance_id = %(instance)s FOR UPDATE
"""
CREATE = """
    INSERT INTO esd_instance_pace (instance_id, next_at) VALUES (%(instance)s, 0)
    ON CONFLICT (instance_id) DO NOTHING
"""
TAKE = "UPDATE esd_instance_pace SET next_at = %(next_at)s WHERE instance_id = %(instance)s"
# No slot before ``seconds`` from now; slots already given are kept.
HOLD = """
    INSERT INTO esd_instance_pace AS pace (instance_id, next_at)
         VALUES (%(instance)s, extract(epoch FROM clock_timestamp()) + %(seconds)s)
    ON CONFLICT (instance_id) DO UPDATE
            SET next_at = GREATEST(pace.next_at, EXCLUDED.next_at)
      RETURNING next_at
"""


class EsdInstancePace(models.Model):
    """The pace of an instance's CIS requests, shared by every worker and server (see
    ``microsoft_esd.pacing``): the next free slot, in seconds since the epoch on the database's
    clock. Written outside the callers' transactions, in short transactions of its own."""

    _name = "esd.instance.pace"
    _description = "Microsoft ESD Instance Request Pace"
    _log_access = False

    # Not a foreign key: a pace is written from other transactions, which must not wait for
    # the lock of an instance created by a transaction still open.
    instance_id = fields.Integer(required=True)
    next_at = fields.Float("Next Free Slot", digits=(16, 6))

    _sql_constraints = [
        ("instance_unique", "UNIQUE(instance_id)", "An instance has one pace."),
    ]

    def _esd_store(self, instance_id):
        """The store of ``instance_id``'s pace for a ``pacing.Pacer``; usable from any thread."""
        return PostgresPaceStore(self.env.registry, instance_id)


class PostgresPaceStore:
    """A pacing store in ``esd_instance_pace``: each call is one statement in a transaction of
    its own (committed at once, READ COMMITTED so that concurrent callers queue on the row
    instead of failing to serialize)."""

    def __init__(self, registry, instance_id):
        self._registry = registry
        self._instance_id = instance_id

    def _cursor(self):
        cr = self._registry.cursor()
        if not self._registry.in_test_mode():  # a test's cursor is one transaction
            cr.connection.set_isolation_level(ISOLATION_LEVEL_READ_COMMITTED)
        return cr

    def reserve(self, schedule, max_wait=None):
        """Take the next free slot of ``schedule`` (see ``pacing.MemoryStore.reserve``), in a
        transaction of its own: its ``pacing.Reservation``; a slot beyond ``max_wait`` is not
        taken."""
        params = {"instance": self._instance_id}
        with self._cursor() as cr:
            cr.execute(NEXT_SLOT, params)
            row = cr.fetchone()
            if row is None:
                cr.execute(CREATE, params)
                cr.execute(NEXT_SLOT, params)
                row = cr.fetchone()
            next_at, now = row
            slot, following = schedule.take(next_at, now)
            if max_wait is None or slot - now <= max_wait:
                cr.execute(TAKE, dict(params, next_at=following))
            return schedule.reservation(slot, now)

    def hold(self, seconds):
        with self._cursor() as cr:
            cr.execute(HOLD, {"instance": self._instance_id, "seconds": seconds})
