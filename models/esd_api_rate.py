import time

import psycopg2.errors

from odoo import api, fields, models

from ..microsoft_esd.api import rate_window

DEFAULT_LIMIT = 600
WINDOW_SECONDS = 60


class EsdApiRate(models.Model):
    """Requests per reseller API key and minute, counted in PostgreSQL.

    Each request adds one to its key's row of the current minute, in a short transaction of its
    own (committed at once, whatever the request does next), so the count is shared by every
    Odoo worker and server. Past ``microsoft_esd.api_rate_limit`` requests a minute (600 by
    default) the API answers 429 with Retry-After until the minute ends.
    """

    _name = "esd.api.rate"
    _description = "Reseller API Request Count"
    _log_access = False

    api_key_id = fields.Integer(required=True, readonly=True)
    window_start = fields.Datetime(required=True, readonly=True, index=True)
    hits = fields.Integer(readonly=True)

    _sql_constraints = [
        ("key_window_unique", "UNIQUE(api_key_id, window_start)", "One count per key and minute."),
    ]

    @api.model
    def _esd_limit(self):
        value = self.env["ir.config_parameter"].sudo().get_param("microsoft_esd.api_rate_limit")
        try:
            return max(1, int(value)) if value else DEFAULT_LIMIT
        except ValueError:
            return DEFAULT_LIMIT

    @api.model
    def _esd_hit(self, api_key_id):
        """Count one request of the key; returns (allowed, limit, remaining, seconds to reset)."""
        limit = self._esd_limit()
        start, reset = rate_window(time.time(), WINDOW_SECONDS)
        hits = limit + 1
        with self.env.registry.cursor() as cr:
            for _attempt in range(5):
                try:
                    cr.execute(
                        "INSERT INTO esd_api_rate (api_key_id, window_start, hits) "
                        "VALUES (%s, to_timestamp(%s) at time zone 'UTC', 1) "
                        "ON CONFLICT (api_key_id, window_start) "
                        "DO UPDATE SET hits = esd_api_rate.hits + 1 RETURNING hits",
                        [api_key_id, start],
                    )
                    hits = cr.fetchone()[0]
                    break  # committed as the cursor closes
                except psycopg2.errors.SerializationFailure:
                    cr.rollback()
        return hits <= limit, limit, max(0, limit - hits), reset

    @api.autovacuum
    def _gc_past_windows(self):
        self.env.cr.execute(
            "DELETE FROM esd_api_rate WHERE window_start < "
            "(now() at time zone 'UTC') - interval '1 hour'"
        )
