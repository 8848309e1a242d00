from odoo.tests import tagged

from .committed import CommittedSimulatorCase

LICENSES = 24


def _run_provisioning_crons(env):
    """What a cron thread does while licenses are due: the provisioning cron, call after call
    (the runner calls again at once while some remain). Returns the licenses it processed."""
    Asset = env["esd.asset"]
    processed = 0
    for _call in range(50):
        processed += Asset._cron_provision()
        if not Asset.search_count(Asset._esd_due_domain()):
            break
    return processed


@tagged("post_install", "-at_install")
class TestConcurrentWorkers(CommittedSimulatorCase):
    """Two workers (threads with their own cursors) run the provisioning cron at once."""

    def test_claim_survives_an_update_committed_after_its_snapshot(self):
        _instance_id, _partner_id, order_id = self.setup_committed_order(LICENSES)

        def claim(env):
            env.cr.execute("SELECT count(*) FROM esd_asset")  # this worker's snapshot starts here
            with self.registry.cursor() as other:  # another worker changes every pending row
                other.execute(
                    "UPDATE esd_asset SET sync_attempts = 0 WHERE sale_order_id = %s", [order_id]
                )
            claimed = env["esd.asset"]._esd_claim(8, fresh=True)
            return len(claimed), set(claimed.sale_order_id.ids)

        self.assertEqual(self.in_threads(claim), [(8, {order_id})])

    def test_two_workers_provision_each_license_exactly_once(self):
        _instance_id, _partner_id, order_id = self.setup_committed_order(LICENSES)
        self.admin.faults(latency_ms=20, paths="orders")
        before = self.admin.stats()
        processed = self.in_threads(_run_provisioning_crons, count=2)
        self.assertEqual(sum(processed), LICENSES)  # every license claimed by one worker only
        self.assertTrue(all(processed), "both workers took part")
        after = self.admin.stats()
        self.assertEqual(after["licenses"] - before["licenses"], LICENSES)
        # A worker that found the order locked by the other one defers its invoice to the
        # cron's next run, 10 s later (_esd_invoice_later): run it as the cron runner would.
        self.in_threads(lambda env: env["esd.asset"]._cron_provision())
        self.in_threads(lambda env: env["esd.asset"]._cron_send_welcome())

        def check(env):
            assets = env["sale.order"].browse(order_id).esd_asset_ids
            self.assertEqual(set(assets.mapped("sync_status")), {"synchronized"})
            self.assertEqual(len({a._esd_secrets()[a.id][0] for a in assets}), LICENSES)
            for asset in assets:
                mails = env["mail.mail"].search([("subject", "like", f"({asset.name})")])
                self.assertEqual(len(mails), 1, asset.name)
            self.assertEqual(len(assets.invoice_id), 1)
            self.assertEqual(len(assets.invoice_id.invoice_line_ids), LICENSES)

        self.committed(check)
