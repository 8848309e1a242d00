"""The webhooks cron as Odoo's cron runner runs it, with real commits, in threads of its own."""

import standardwebhooks

from odoo import fields
from odoo.tests import tagged

from ..microsoft_esd import webhooks
from .api_common import Receiver
from .committed import CommittedSimulatorCase

CRON = "microsoft_esd.ir_cron_esd_webhooks"


@tagged("post_install", "-at_install")
class TestWebhooksCron(CommittedSimulatorCase):
    def setUp(self):
        super().setUp()
        self.receiver = Receiver(failures=3)
        self.addCleanup(self.receiver.stop)
        self.secret = webhooks.new_secret()

        def setup(env):
            env["ir.config_parameter"].set_param("microsoft_esd.webhook_allow_loopback", "1")
            reseller = env["res.partner"].create({"name": "Hook Reseller", "is_company": True})
            endpoint = env["esd.webhook.endpoint"].create(
                {
                    "url": self.receiver.url,
                    "events": "price.changed",
                    "partner_id": reseller.id,
                    "company_id": env.company.id,
                    "secret_sealed": env["esd.asset"]._esd_vault().seal(self.secret),
                }
            )
            return reseller.id, endpoint.id

        self.reseller_id, self.endpoint_id = self.committed(setup)
        self.addCleanup(self._cleanup_hooks)

    def _cleanup_hooks(self):
        def cleanup(env):
            env.cr.execute("DELETE FROM mail_activity WHERE res_model = 'esd.webhook.endpoint'")
            env.cr.execute("DELETE FROM esd_webhook_endpoint WHERE id = %s", [self.endpoint_id])
            env.cr.execute("DELETE FROM res_partner WHERE id = %s", [self.reseller_id])
            env.cr.execute(
                "DELETE FROM ir_config_parameter WHERE key = 'microsoft_esd.webhook_allow_loopback'"
            )

        self.committed(cleanup)

    def emit(self, count):
        def work(env):
            reseller = env["res.partner"].browse(self.reseller_id)
            return (
                env["esd.webhook.delivery"]
                ._esd_emit(
                    "price.changed",
                    [
                        (env.company, reseller, f"change {n}", lambda n=n: {"products": [{"n": n}]})
                        for n in range(count)
                    ],
                )
                .ids
            )

        return self.committed(work)

    def make_due(self):
        """The backoff passed (what waiting 5, 10, 20 seconds would do)."""

        def work(env):
            past = fields.Datetime.subtract(fields.Datetime.now(), minutes=1)
            env.cr.execute(
                "UPDATE esd_webhook_delivery SET next_attempt_at = %s "
                "WHERE endpoint_id = %s AND state = 'pending'",
                [past, self.endpoint_id],
            )

        self.committed(work)

    def states(self, ids):
        return self.committed(
            lambda env: [
                (d.state, d.attempts, d.last_status_code)
                for d in env["esd.webhook.delivery"].browse(ids)
            ]
        )

    def test_a_receiver_failing_three_times_gets_each_event_once_signed(self):
        ids = self.emit(2)
        for _round in range(4):
            self.assertEqual(self.run_cron(CRON), 0)
            self.make_due()
        self.assertEqual(self.states(ids), [("delivered", 4, 204), ("delivered", 1, 204)])
        accepted = self.receiver.accepted()
        self.assertEqual(len(accepted), 2)
        self.assertEqual(len(self.receiver.messages), 5, "3 refused, then each message once")
        verifier = standardwebhooks.Webhook(self.secret)
        received = {}
        for headers, body, _payload in accepted:
            received[headers["webhook-id"]] = verifier.verify(body, headers)["data"]
        self.assertEqual(sorted(d["products"][0]["n"] for d in received.values()), [0, 1])
        # The endpoint's messages not tried while it failed waited, untried.
        self.assertEqual(
            self.committed(
                lambda env: env["esd.webhook.endpoint"].browse(self.endpoint_id).failing_since
            ),
            False,
        )

    def test_an_endpoint_failing_for_24_hours_is_disabled(self):
        self.receiver.failures = 10**6
        ids = self.emit(1)

        def failing_long(env):
            since = fields.Datetime.subtract(fields.Datetime.now(), hours=25)
            env["esd.webhook.endpoint"].browse(self.endpoint_id).write({"failing_since": since})

        self.committed(failing_long)
        self.assertEqual(self.run_cron(CRON), 0)

        def outcome(env):
            endpoint = env["esd.webhook.endpoint"].browse(self.endpoint_id)
            managers = endpoint.activity_ids.user_id
            return endpoint.state, managers, env.ref("base.user_admin") in managers

        state, managers, admin_told = self.committed(outcome)
        self.assertEqual(state, "disabled")
        self.assertTrue(managers and admin_told, "the ESD managers have an activity")
        self.assertEqual(self.states(ids)[0][0], "failed")
        # A disabled endpoint gets nothing more.
        self.emit(1)
        sent = len(self.receiver.messages)
        self.run_cron(CRON)
        self.assertEqual(len(self.receiver.messages), sent)
