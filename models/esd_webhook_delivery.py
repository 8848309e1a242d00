import logging
import uuid

import psycopg2.errors

from odoo import api, fields, models
from odoo.tools import mute_logger

from ..microsoft_esd import webhooks
from ..microsoft_esd.api import iso
from ..microsoft_esd.errors import redact
from . import esd_jobs
from .esd_access import check_caller

_logger = logging.getLogger(__name__)

CRON = "microsoft_esd.ir_cron_esd_webhooks"
BATCH = 100
DEFAULT_PARALLELISM = 4
EVENT_SELECTION = [(event, event) for event in webhooks.EVENTS]


class EsdWebhookDelivery(models.Model):
    """The outbox: one message of one event for one endpoint, written in the transaction of the
    change it tells (a license delivered, failed or returned, an order invoiced), sent by the
    webhooks cron and kept as the endpoint's delivery log.

    The message carries ids and states, never a key. It keeps its id (``webhook-id``) on every
    attempt and replay; failed attempts are retried with a capped, jittered backoff (5 s
    doubling up to an hour) for 24 hours, then it fails. Replay sends it again.
    """

    _name = "esd.webhook.delivery"
    _description = "Reseller Webhook Delivery"
    _order = "id desc"
    _rec_name = "message_id"

    endpoint_id = fields.Many2one(
        "esd.webhook.endpoint", required=True, readonly=True, index=True, ondelete="cascade"
    )
    partner_id = fields.Many2one(related="endpoint_id.partner_id", store=True, index=True)
    company_id = fields.Many2one(related="endpoint_id.company_id", store=True, index=True)
    event_type = fields.Selection(EVENT_SELECTION, "Event", required=True, readonly=True)
    message_id = fields.Char("Message ID", required=True, readonly=True, index=True)
    reference = fields.Char(readonly=True, help="The license or order the event is about.")
    payload = fields.Text(readonly=True, help="The JSON body sent (ids and states, no key).")
    state = fields.Selection(
        [("pending", "Pending"), ("delivered", "Delivered"), ("failed", "Failed")],
        default="pending",
        required=True,
        readonly=True,
        index=True,
    )
    attempts = fields.Integer(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True)
    first_failure_at = fields.Datetime(readonly=True)
    last_attempt_at = fields.Datetime(readonly=True)
    last_status_code = fields.Integer("Answer Code", readonly=True)
    last_error = fields.Char(readonly=True)
    delivered_at = fields.Datetime(readonly=True)

    # ------------------------------------------------------------------ the outbox
    @api.model
    def _esd_emit(self, event_type, items):
        """Write the messages of ``event_type`` for the endpoints subscribed to it.

        ``items``: (company, partners, reference, data) per object the event is about, ``data``
        a function returning the event's ``data``; the enabled endpoints of those partners
        (commercial entities) in that company get one message each. Nothing else is read or
        written when no endpoint listens."""
        Endpoint = self.env["esd.webhook.endpoint"]
        now = fields.Datetime.now()
        vals_list = []
        for company, partners, reference, data in items:
            subscriptions = Endpoint._esd_subscriptions(company.id)
            if not subscriptions:
                continue
            endpoint_ids = {
                endpoint_id
                for partner in partners.commercial_partner_id
                for endpoint_id in subscriptions.get((partner.id, event_type), ())
            }
            if not endpoint_ids:
                continue
            body = webhooks.message_body(event_type, iso(now), data()).decode()
            vals_list += [
                {
                    "endpoint_id": endpoint_id,
                    "event_type": event_type,
                    "message_id": f"msg_{uuid.uuid4().hex}",
                    "reference": reference,
                    "payload": body,
                }
                for endpoint_id in sorted(endpoint_ids)
            ]
        if not vals_list:
            return self.browse()
        deliveries = self.sudo().create(vals_list)
        self._esd_trigger_at_commit()
        return deliveries

    @api.model
    def _esd_trigger_at_commit(self):
        """Wake the webhooks cron once the transaction that wrote messages commits (once per
        transaction, however many messages it wrote)."""
        precommit = self.env.cr.precommit
        if not precommit.data.get("esd_webhooks_trigger"):
            precommit.data["esd_webhooks_trigger"] = True
            env = self.env

            def trigger():
                esd_jobs.trigger(env, CRON)
                env.flush_all()  # the commit flushed before its precommit hooks ran

            precommit.add(trigger)

    # ------------------------------------------------------------------ the cron
    @api.model
    def _cron_send(self):
        """Send one batch of due messages, each endpoint's in order in a thread of its own;
        record the answers, commit, report the progress. Returns how many were attempted."""
        deliveries = self._esd_claim(BATCH)
        attempted = deliveries._esd_send()
        esd_jobs.commit(self.env)
        remaining = self.search_count(self._esd_due_domain())
        later = self.search(
            [("state", "=", "pending"), ("next_attempt_at", "!=", False)],
            order="next_attempt_at",
            limit=1,
        )
        if later and not remaining:
            esd_jobs.trigger(self.env, CRON, later.next_attempt_at)
        esd_jobs.finish(self.env, len(deliveries), remaining)
        return attempted

    @api.model
    def _esd_send_pending(self):
        """Send every due message, batch after batch (for tests and shells). Returns how many
        attempts were made."""
        attempted = 0
        while deliveries := self._esd_claim(BATCH):
            attempted += deliveries._esd_send()
        return attempted

    @api.model
    def _esd_due_domain(self):
        return [
            ("state", "=", "pending"),
            "|",
            ("next_attempt_at", "=", False),
            ("next_attempt_at", "<=", fields.Datetime.now()),
            ("endpoint_id.state", "=", "enabled"),
        ]

    @api.model
    def _esd_claim(self, limit):
        """Lock up to ``limit`` due messages of enabled endpoints; rows another worker holds are
        skipped (a serialization failure starts the cron's transaction over)."""
        self.env.flush_all()
        for _attempt in range(5):
            try:
                with self.env.cr.savepoint(flush=False), mute_logger("odoo.sql_db"):
                    self.env.cr.execute(
                        "SELECT d.id FROM esd_webhook_delivery d "
                        "JOIN esd_webhook_endpoint e ON e.id = d.endpoint_id "
                        "WHERE d.state = 'pending' AND e.state = 'enabled' AND e.active "
                        "AND (d.next_attempt_at IS NULL "
                        "OR d.next_attempt_at <= (now() at time zone 'UTC')) "
                        "ORDER BY d.next_attempt_at NULLS FIRST, d.id "
                        "LIMIT %s FOR UPDATE OF d SKIP LOCKED",
                        [limit],
                    )
                    return self.browse([row[0] for row in self.env.cr.fetchall()])
            except psycopg2.errors.SerializationFailure:
                if not esd_jobs.rollback(self.env):
                    raise
        return self.browse()

    def _esd_send(self):
        """Send these claimed messages and record each answer; returns how many were sent."""
        if not self:
            return 0
        allow_loopback = self.env["esd.webhook.endpoint"]._esd_allow_loopback()
        groups = []
        for endpoint, deliveries in self.sorted("id").grouped("endpoint_id").items():
            secret = endpoint._esd_secret()
            groups.append(
                [
                    webhooks.Attempt(
                        delivery.id,
                        endpoint.url,
                        webhooks.signed_headers(
                            secret,
                            delivery.message_id,
                            fields.Datetime.now().timestamp(),
                            delivery.payload.encode(),
                        ),
                        delivery.payload.encode(),
                    )
                    for delivery in deliveries
                ]
            )

        def send(attempt):
            return webhooks.deliver(
                attempt.url, attempt.headers, attempt.body, allow_loopback=allow_loopback
            )

        answers = webhooks.send_groups(groups, send, self._esd_parallelism())
        now = fields.Datetime.now()
        for endpoint, deliveries in self.grouped("endpoint_id").items():
            sent = deliveries.filtered(lambda d: d.id in answers)
            for delivery in sent:
                delivery._esd_record(answers[delivery.id], now)
            failed = sent.filtered(lambda d: d.state != "delivered")
            if failed:
                # The endpoint is down: its messages not tried wait for the failed one's retry.
                (deliveries - sent).write({"next_attempt_at": failed[0].next_attempt_at})
                endpoint._esd_note_failure(now)
            elif sent:
                endpoint.write({"failing_since": False, "last_success_at": now})
        return len(answers)

    def _esd_record(self, answer, now):
        """Record one attempt's answer: delivered, retried later, or failed for good."""
        self.ensure_one()
        vals = {
            "attempts": self.attempts + 1,
            "last_attempt_at": now,
            "last_status_code": answer.status or 0,
        }
        if answer.ok:
            vals.update(state="delivered", delivered_at=now, last_error=False)
            vals["next_attempt_at"] = False
        else:
            error = answer.error or f"HTTP {answer.status}: {answer.text[:200]}"
            first = self.first_failure_at or now
            vals.update(last_error=redact(error)[:500], first_failure_at=first)
            if webhooks.gives_up(first, now):
                vals.update(state="failed", next_attempt_at=False)
            else:
                delay = webhooks.retry_delay(vals["attempts"])
                vals["next_attempt_at"] = fields.Datetime.add(now, seconds=delay)
        self.sudo().write(vals)

    @api.model
    def _esd_parallelism(self):
        value = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("microsoft_esd.webhook_parallelism", DEFAULT_PARALLELISM)
        )
        try:
            return max(1, int(value))
        except ValueError:
            return DEFAULT_PARALLELISM

    # ------------------------------------------------------------------ replay
    def action_replay(self):
        """Send these messages again (ESD users of their company)."""
        check_caller(self, operation="read")
        self.sudo()._esd_replay()
        return True

    def _esd_owner_replay(self):
        """The reseller replays its own messages (private: after the API or portal's check)."""
        self.endpoint_id._esd_check_owner()
        self.sudo()._esd_replay()

    def _esd_replay(self):
        self.write(
            {
                "state": "pending",
                "attempts": 0,
                "first_failure_at": False,
                "next_attempt_at": False,
                "delivered_at": False,
            }
        )
        esd_jobs.trigger(self.env, CRON)

    def _esd_api_values(self):
        self.ensure_one()
        delivery = self.sudo()
        return {
            "id": delivery.id,
            "message_id": delivery.message_id,
            "event": delivery.event_type,
            "reference": delivery.reference or None,
            "state": delivery.state,
            "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code or None,
            "last_error": delivery.last_error or None,
            "next_attempt_at": (
                iso(delivery.next_attempt_at) if delivery.state == "pending" else None
            ),
            "delivered_at": iso(delivery.delivered_at),
            "created_at": iso(delivery.create_date),
        }
