from psycopg2.extensions import ISOLATION_LEVEL_READ_COMMITTED

from odoo import fields, models

# Takes the next free slot of an instance and keeps the following one an interval later, on the
# database's clock (shared by every server); the seconds until the slot taken.
RESERVE = """
    INSERT INTO esd_instance_pace AS pace (instance_id, next_at)
         VALUES (%(instance)s, extract(epoch FROM clock_timestamp()) + %(interval)s)
    ON CONFLICT (instance_id) DO UPDATE
            SET next_at = GREATEST(pace.next_at, extract(epoch FROM clock_timestamp()))
                          + %(interval)s
      RETURNING next_at - %(interval)s - extract(epoch FROM clock_timestamp())
"""
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

    def _run(self, query, **params):
        with self._registry.cursor() as cr:
            if not self._registry.in_test_mode():  # a test's cursor is one transaction
                cr.connection.set_isolation_level(ISOLATION_LEVEL_READ_COMMITTED)
            cr.execute(query, dict(params, instance=self._instance_id))
            return cr.fetchone()[0]

    def reserve(self, interval):
        return self._run(RESERVE, interval=interval)

    def hold(self, seconds):
        self._run(HOLD, seconds=seconds)
