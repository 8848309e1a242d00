import json

from odoo import api, fields, models

from ..microsoft_esd.api import Problem
from . import esd_jobs

KEEP_HOURS = 24


class EsdApiIdempotency(models.Model):
    """The answer of a reseller API request that created something, kept under its
    Idempotency-Key for a day: the same key with the same request gets the same answer (no
    second order), with another request a 409.

    A key is claimed by inserting its row at the start of the request, in the request's
    transaction: a second request with the same key waits for the first one's commit, then
    gets its answer (PostgreSQL reports the conflict, Odoo runs the request again). Only
    answers of requests that succeeded are kept: a refused request leaves its key free. The
    answer is stored sealed (it may hold a webhook secret). Written by Odoo's own code only.
    """

    _name = "esd.api.idempotency"
    _description = "Reseller API Idempotency Key"
    _order = "id desc"

    user_id = fields.Many2one("res.users", required=True, readonly=True, ondelete="cascade")
    key = fields.Char(required=True, readonly=True)
    api_key_id = fields.Integer("API Key", readonly=True)
    fingerprint = fields.Char(required=True, readonly=True)
    status = fields.Integer(readonly=True)
    location = fields.Char(readonly=True)
    answer_sealed = fields.Text(groups=fields.NO_ACCESS)
    expires_at = fields.Datetime(required=True, readonly=True, index=True)

    _sql_constraints = [
        ("user_key_unique", "UNIQUE(user_id, key)", "An idempotency key is used once per user."),
    ]

    @api.model
    def _esd_claim(self, key, fingerprint, api_key_id):
        """The answer kept for the requesting user's ``key`` as (status, body, location), or
        None once the key is claimed for this request (``_esd_keep`` then stores its answer).
        Problem idempotency-key-reused if the key was used for another request."""
        user = self.env.user
        expires = fields.Datetime.add(fields.Datetime.now(), hours=KEEP_HOURS)
        # A request with the same key in flight: this insert waits for its commit, then fails
        # to serialize and Odoo runs this request again (it then finds the kept answer), with
        # no `bad query` ERROR line for what is expected.
        with esd_jobs.expected_conflicts():
            self.env.cr.execute(
                "INSERT INTO esd_api_idempotency (user_id, key, fingerprint, api_key_id, "
                "expires_at, create_uid, write_uid, create_date, write_date) VALUES (%s, %s, %s, "
                "%s, %s, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC') "
                "ON CONFLICT (user_id, key) DO NOTHING RETURNING id",
                [user.id, key, fingerprint, api_key_id, expires, user.id, user.id],
            )
        if self.env.cr.fetchone():
            return None
        kept = self.sudo().search([("user_id", "=", user.id), ("key", "=", key)], limit=1)
        if kept.expires_at < fields.Datetime.now():
            kept.write(
                {
                    "fingerprint": fingerprint,
                    "api_key_id": api_key_id,
                    "status": 0,
                    "answer_sealed": False,
                    "expires_at": expires,
                    "location": False,
                }
            )
            return None
        if kept.fingerprint != fingerprint:
            raise Problem(
                "idempotency-key-reused",
                "This Idempotency-Key was used for another request in the last 24 hours.",
            )
        vault = self.env["esd.asset"]._esd_vault()
        return kept.status, json.loads(vault.unseal(kept.answer_sealed)), kept.location

    @api.model
    def _esd_keep(self, key, status, body, location=None):
        """Keep the answer of the request that claimed the requesting user's ``key``."""
        vault = self.env["esd.asset"]._esd_vault()
        kept = self.sudo().search([("user_id", "=", self.env.user.id), ("key", "=", key)])
        kept.write(
            {
                "status": status,
                "location": location or False,
                "answer_sealed": vault.seal(json.dumps(body)),
            }
        )

    @api.autovacuum
    def _gc_expired(self):
        """Forget the keys of more than a day ago."""
        self.env.cr.execute(
            "DELETE FROM esd_api_idempotency WHERE expires_at < now() at time zone 'UTC'"
        )
