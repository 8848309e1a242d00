"""Every cron entry point, run as Odoo's cron runner runs it: in a thread and a cursor of its
own, with real commits (a commit that is a no-op in a test hides the bugs of a transaction)."""

import datetime
import threading
import time
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import tagged

from odoo.addons.microsoft_esd.models import esd_asset_lifecycle, esd_provisioning_run
from odoo.addons.microsoft_esd.models.esd_asset_provisioning import PROVISION_CRONS

from .committed import CommittedSimulatorCase
from .common import OFFICE


@tagged("post_install", "-at_install")
class TestCronsWithRealCommits(CommittedSimulatorCase):
    def _order(self, env, order_id):
        return env["sale.order"].browse(order_id)

    def _base_batch_size(self, size):
        """Batches of ``size`` licenses at first (system parameter microsoft_esd.batch_size),
        committed, and the default again after the test."""

        def set_size(value):
            return lambda env: env["ir.config_parameter"].set_param(
                "microsoft_esd.batch_size", value
            )

        self.committed(set_size(str(size)))
        self.addCleanup(self.committed, set_size(False))

    def _assert_invoiced(self, order_ids):
        """Every license of these orders is on a posted invoice (what is committed)."""

        def all_invoiced(env):
            for order in env["sale.order"].browse(order_ids):
                self.assertEqual(order.esd_asset_ids.invoice_id.state, "posted", order.name)

        self.committed(all_invoiced)

    def _credits(self, asset):
        return asset.sudo().sale_line_id.invoice_lines.filtered(
            lambda line: line.move_id.move_type == "out_refund"
        )

    def _forget_runs(self, env, xmlid):
        """No trigger and no progress of the cron of ``xmlid`` left (uncommitted); its id."""
        cron = env.ref(xmlid)
        env.cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [cron.id])
        env.cr.execute("DELETE FROM ir_cron_progress WHERE cron_id = %s", [cron.id])
        return cron.id

    def _assert_one_call_then_woken(self, env, cron_id, done):
        """The cron's last run made one call, which did ``done`` and reported nothing remaining
        (the run ended there), and the cron is due again at once."""
        progress = env["ir.cron.progress"].search([("cron_id", "=", cron_id)])
        self.assertEqual(len(progress), 1, "one call in the run, not up to ten")
        self.assertEqual((progress.done, progress.remaining), (done, 0))
        call_at = env["ir.cron.trigger"].search([("cron_id", "=", cron_id)]).mapped("call_at")
        self.assertTrue(call_at and min(call_at) <= fields.Datetime.now(), "woken at once")

    def test_a_provisioning_call_that_used_its_window_ends_the_crons_run(self):
        """Odoo's runner calls a cron up to 10 times in one run, which must end within the
        cron's real-time limit (120 s by default); a provisioning call that used its whole
        window ends the run and wakes its cron again at once, so one run lasts one window. The
        order it completed after its window is invoiced by the next run, after that run's
        first batch, and the licenses still due are provisioned then."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2, orders=2)

        self._base_batch_size(2)

        cron_id = self.committed(
            lambda env: self._forget_runs(env, "microsoft_esd.ir_cron_esd_provision")
        )
        with patch.object(esd_provisioning_run, "PIPELINE_SECONDS", 0.0):
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        def after_one_call(env):
            self._assert_one_call_then_woken(env, cron_id, 2)
            first, second = env["sale.order"].browse(order_ids)
            self.assertEqual(set(first.esd_asset_ids.mapped("lifecycle_state")), {"delivered"})
            self.assertFalse(first.invoice_ids, "left to the next run's start")
            self.assertFalse(any(second.esd_asset_ids.mapped("esd_license_id")))

        self.committed(after_one_call)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        def all_done(env):
            for order in env["sale.order"].browse(order_ids):
                assets = order.esd_asset_ids
                self.assertEqual(set(assets.mapped("lifecycle_state")), {"delivered"})
                self.assertEqual(assets.invoice_id.state, "posted", order.name)

        self.committed(all_done)

    def test_the_next_provisioning_call_starts_from_the_batch_size_the_last_one_learned(self):
        """A call sizes its batches by what the pool ordered in 2 s; the next call of the
        process (a window later) starts from that size, not from the base size, whose first
        two batches the pool would order before the cron's thread claimed a third. A size
        learned too long ago, or under another pace, is forgotten."""
        instance_id, _partner_id, _order_id = self.setup_committed_order(12)

        self._base_batch_size(2)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        def next_size():
            # as a cron call sees it: in a thread of its own
            return self.in_threads(lambda env: esd_provisioning_run.ProvisioningRun(env).size)[0]

        # Licenses answered in milliseconds: 2 s of them is more than eight times the base.
        self.assertEqual(next_size(), 2 * esd_provisioning_run.MAX_BATCH_FACTOR)
        with patch.object(esd_provisioning_run, "LEARNED_SIZE_SECONDS", 0.0):
            self.assertEqual(next_size(), 2)

        def paced(env):
            env["esd.instance"].browse(instance_id).write({"rate_limit": 5})

        self.committed(paced)
        self.assertEqual(next_size(), 2)

    def test_two_batches_are_claimed_for_the_pool_while_an_order_is_invoiced(self):
        """Invoicing a delivered order (Odoo's invoice of its lines) is the longest of the
        cron thread's own work between two batches: it starts only once the batch after the
        one in flight is claimed and queued, so the pool has two batches to order meanwhile,
        and the pace is not left unused while the invoice is made."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2, orders=4)

        self._base_batch_size(2)
        invoice = esd_provisioning_run.ProvisioningRun._invoice
        held_while_invoicing = []

        def observed(run, batch, *args):
            # Which orders another transaction holds (claimed by a batch), seen from outside.
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT id FROM sale_order WHERE id = ANY(%s) FOR UPDATE SKIP LOCKED",
                    [order_ids],
                )
                free = {row[0] for row in cr.fetchall()}
                cr.rollback()
            invoiced = set(batch.assets.sale_order_id.ids)
            held_while_invoicing.append((invoiced, set(order_ids) - free - invoiced))
            return invoice(run, batch, *args)

        with patch.object(esd_provisioning_run.ProvisioningRun, "_invoice", observed):
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        first_invoiced, held = held_while_invoicing[0]
        self.assertEqual(len(first_invoiced), 1, "a batch of 2 is one order of 2")
        self.assertGreaterEqual(
            len(held), 2, f"orders claimed for the pool while {first_invoiced} was invoiced"
        )

        self._assert_invoiced(order_ids)

    def test_the_last_batches_of_a_backlog_invoice_their_orders_as_they_finish(self):
        """A call that used its window leaves its orders' invoicing to the next call (which
        invoices them while its pool orders); when no other license is due there is no next
        call, and an order is invoiced as soon as its last batch is committed, while the
        call's last batches are still being ordered, not after them."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2, orders=2)

        self._base_batch_size(2)
        # Each CIS order takes 1.5 s: the window of 1 s is used while the first order's batch
        # is at CIS, after both orders' batches were claimed.
        self.admin.faults(latency_ms=1500, paths="orders")
        invoice = esd_provisioning_run.ProvisioningRun._invoice
        seen = []

        def observed(run, batch, *args):
            result = invoice(run, batch, *args)

            def state(env):
                first, second = env["sale.order"].browse(order_ids)
                return (
                    set(env["esd.asset"].browse(batch.assets.ids).sale_order_id.ids),
                    bool(first.invoice_ids),
                    set(second.esd_asset_ids.mapped("sync_status")),
                )

            seen.append(self.committed(state))
            return result

        with (
            patch.object(esd_provisioning_run, "PIPELINE_SECONDS", 1.0),
            patch.object(esd_provisioning_run.ProvisioningRun, "_invoice", observed),
        ):
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        # The first order invoiced while the second one's batch was still at CIS.
        self.assertEqual(seen[0], ({order_ids[0]}, True, {"unsynchronised"}))

        self._assert_invoiced(order_ids)

    def _delivered_not_invoiced(self, order_ids, batches):
        """The first ``batches`` batches of a call ordered and committed, their orders' invoicing
        left undone (as a call that used its window leaves it)."""
        SaleOrder = self.registry["sale.order"]

        def first_batches(env):
            return esd_provisioning_run.ProvisioningRun(env, max_batches=batches).run()

        with patch.object(SaleOrder, "_esd_invoice_ready", lambda *args, **kwargs: None):
            self.in_threads(first_batches)

        def invoices(env):
            return env["sale.order"].browse(order_ids).invoice_ids

        self.assertFalse(self.committed(invoices))

    def _observe_invoices(self, order_ids, state):
        """Runs the provisioning cron; returns {order id: ``state(env)`` read from outside (what
        is committed) as the order's invoice is about to be made}, in the order they were."""
        SaleOrder = self.registry["sale.order"]
        make = SaleOrder._esd_invoice_delivered
        seen = {}

        def observed(orders):
            seen[orders.id] = self.committed(state)
            return make(orders)

        with patch.object(SaleOrder, "_esd_invoice_delivered", observed):
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        self._assert_invoiced(order_ids)
        return seen

    def test_the_invoicing_commits_each_order_before_it_invoices_the_next(self):
        """Posting an invoice holds its journal's next number until its transaction ends, and
        every other invoicing of that journal waits for it (another server's cron, a shop
        payment's invoice): the provisioning cron commits each order's invoice before it
        makes the next one, never several in one transaction."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2, orders=2)
        self._delivered_not_invoiced(order_ids, batches=1)

        def invoiced(env):
            return set(env["sale.order"].browse(order_ids).filtered("invoice_ids").ids)

        seen = self._observe_invoices(order_ids, invoiced)
        (first, before_first), (_second, before_second) = seen.items()
        self.assertEqual(before_first, set())
        self.assertEqual(before_second, {first}, "the first invoice committed before the second")

    def test_the_orders_a_call_left_are_invoiced_one_after_each_batch_of_the_next(self):
        """A call that used its window leaves its last orders' invoicing to the next call. That
        call invoices them one after each of its batches, each in a transaction of its own, so
        its pool has a batch to order during each of those invoices: not all of them before
        its first batch, when the pool has only its first two batches to order."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2, orders=5)
        self._base_batch_size(2)
        self._delivered_not_invoiced(order_ids, batches=2)
        left, due = order_ids[:2], order_ids[2:]

        def state(env):
            delivered = env["esd.asset"].search_count(
                [("sale_order_id", "in", due), ("sync_status", "=", "synchronized")]
            )
            return delivered, set(env["sale.order"].browse(left).filtered("invoice_ids").ids)

        seen = self._observe_invoices(order_ids, state)
        first, second = (order_id for order_id in seen if order_id in left)
        self.assertGreater(seen[first][0], 0, "the first left order after the first batch")
        self.assertGreater(
            seen[second][0], seen[first][0], "the second one after the next batch, not at once"
        )
        self.assertEqual(seen[second][1], {first}, "the first one committed before")

    def test_the_last_batch_s_orders_are_invoiced_beside_it_by_an_idle_worker(self):
        """When the last batch of a backlog completes several orders, invoicing them one after
        the other would leave the other workers idle until the last invoice: the provisioning
        crons are woken (committed) before the first invoice, and a worker they wake invoices
        the orders this one does not hold, while this one invoices its first. No order is
        invoiced twice."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2, orders=2)
        self._base_batch_size(4)  # one batch: both orders

        def idle_workers(env):
            crons = env["ir.cron"].browse(env.ref(xmlid).id for xmlid in PROVISION_CRONS)
            env.cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = ANY(%s)", [crons.ids])
            crons.nextcall = fields.Datetime.now() + datetime.timedelta(hours=1)

        self.committed(idle_workers)
        SaleOrder = self.registry["sale.order"]
        make = SaleOrder._esd_invoice_delivered
        invoiced_meanwhile = []

        def woken(env):
            env.cr.execute(
                "SELECT call_at FROM ir_cron_trigger WHERE cron_id = %s",
                [env.ref("microsoft_esd.ir_cron_esd_provision_2").id],
            )
            return [row[0] for row in env.cr.fetchall()]

        def invoiced(env):
            return env["sale.order"].browse(order_ids).filtered("invoice_ids").ids

        def observed(orders):
            if not invoiced_meanwhile:  # the first invoice, its order held by this worker
                wake_ups = self.committed(woken)
                invoiced_meanwhile.append((orders.id, wake_ups))
                if wake_ups:  # an idle worker's cron runs now, as Odoo's runner runs it
                    self.run_cron("microsoft_esd.ir_cron_esd_provision_2", woken=True)
                invoiced_meanwhile.append(self.committed(invoiced))
            return make(orders)

        with patch.object(SaleOrder, "_esd_invoice_delivered", observed):
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        (first, wake_ups), others = invoiced_meanwhile
        self.assertTrue(wake_ups, "the crons are woken before the first invoice")
        self.assertEqual(
            others,
            [order_id for order_id in order_ids if order_id != first],
            "invoiced by the woken worker meanwhile",
        )
        self._assert_invoiced(order_ids)
        self.assertEqual(
            self.committed(lambda env: len(env["sale.order"].browse(order_ids).invoice_ids)), 2
        )

    def test_every_cron_entry_point_does_its_work_and_commits_it(self):
        instance_id, _partner_id, order_id = self.setup_committed_order(3)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        def delivered(env):
            assets = self._order(env, order_id).esd_asset_ids.sorted("id")
            self.assertEqual(set(assets.mapped("lifecycle_state")), {"delivered"})
            self.assertEqual(len(assets.invoice_id), 1)
            self.assertEqual(assets.invoice_id.state, "posted")
            self.assertTrue(all(assets.mapped("welcome_pending")))
            return assets.mapped("esd_license_id")

        license_ids = self.committed(delivered)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_welcome"), 0)

        def emailed(env):
            assets = self._order(env, order_id).esd_asset_ids
            self.assertFalse(any(assets.mapped("welcome_pending")))
            for asset in assets:
                mails = env["mail.mail"].search([("esd_asset_id", "=", asset.id)])
                self.assertEqual(len(mails), 1, asset.name)

        self.committed(emailed)
        self.admin.redeem(license_ids[0])
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_status_refresh"), 0)

        def refreshed(env):
            assets = self._order(env, order_id).esd_asset_ids.sorted("id")
            self.assertEqual(assets.mapped("token_status"), ["redeemed", "activated", "activated"])
            return env["esd.catalog.sync.result"].search_count([("instance_id", "=", instance_id)])

        syncs_before = self.committed(refreshed)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_reconcile"), 0)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_catalog_sync"), 0)

        def catalog_synced(env):
            instance = env["esd.instance"].browse(instance_id)
            syncs = env["esd.catalog.sync.result"].search_count([("instance_id", "=", instance_id)])
            self.assertEqual(syncs, syncs_before + 1)
            self.assertEqual(instance.state, "connected")
            # A certificate that expires within 30 days: the ESD managers are told.
            instance.certificate_expiry = fields.Datetime.now() + datetime.timedelta(days=10)

        self.committed(catalog_synced)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_certificate_check"), 0)
        certificate = self.committed(
            lambda env: env.ref("microsoft_esd.mail_activity_esd_certificate").id
        )
        self.assertTrue(
            self.committed(
                lambda env: (
                    env["esd.instance"]
                    .browse(instance_id)
                    .activity_ids.filtered(lambda a: a.activity_type_id.id == certificate)
                )
            )
        )
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_returns"), 0)

    def test_a_return_whose_answers_are_all_lost_is_finished_once_by_the_returns_cron(self):
        _instance_id, _partner_id, order_id = self.setup_committed_order(1)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)
        # Microsoft accepts the return, then every answer is lost.
        self.admin.faults(drop_after_commit=50, paths="return")
        self.committed(lambda env: self._order(env, order_id).esd_asset_ids.action_cancel_license())
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_returns"), 0)

        def lost(env):
            asset = self._order(env, order_id).esd_asset_ids
            status = {lic["licenseId"]: lic["tokenStatus"] for lic in self.admin.licenses()}
            self.assertEqual(status[asset.esd_license_id], "ReturnAccepted")
            self.assertEqual((asset.state, asset.return_state), ("active", "requested"))
            self.assertFalse(self._credits(asset))
            return asset.id

        asset_id = self.committed(lost)
        self.admin.clear_faults()

        def later(env):
            # An hour later (SQL's now() is the start of this transaction: a day back is safe).
            past = fields.Datetime.subtract(fields.Datetime.now(), days=1)
            env["esd.asset"].browse(asset_id).write(
                {"next_attempt_at": past, "return_requested_at": past}
            )

        self.committed(later)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_returns"), 0)

        def credited_once(env):
            asset = env["esd.asset"].browse(asset_id)
            self.assertEqual(
                (asset.return_state, asset.state, asset.token_status),
                ("done", "cancelled", "return_accepted"),
            )
            credit = self._credits(asset)
            self.assertEqual(len(credit), 1)
            self.assertEqual(credit.move_id.state, "posted")
            self.assertEqual(credit.price_total, asset.invoice_line_id.price_total)

        self.committed(credited_once)
        self.committed(later)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_returns"), 0)
        self.committed(credited_once)  # nothing left to do: no second credit note

    def test_a_returns_call_that_used_its_window_ends_the_crons_run(self):
        """Each return is a CIS call, a second or more when CIS is slow or failing: the soak saw
        calls of 50 returns take 40-60 s, and Odoo's runner call the cron three times in one
        run, 147 s, past the cron's real-time limit (the threaded server reloaded). A returns
        call that used its window ends the run and wakes its cron at once; the next run takes
        up the returns left."""
        _instance_id, _partner_id, order_id = self.setup_committed_order(3)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        def cancel_all(env):
            self._order(env, order_id).esd_asset_ids.action_cancel_license()
            return self._forget_runs(env, "microsoft_esd.ir_cron_esd_returns")

        cron_id = self.committed(cancel_all)
        with patch.object(esd_asset_lifecycle, "RETURNS_WINDOW_SECONDS", 0.0):
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_returns"), 0)

        def after_one_call(env):
            self._assert_one_call_then_woken(env, cron_id, 1)
            assets = self._order(env, order_id).esd_asset_ids
            self.assertEqual(
                sorted(assets.mapped("return_state")), ["done", "requested", "requested"]
            )

        self.committed(after_one_call)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_returns", woken=True), 0)

        def all_credited(env):
            for asset in self._order(env, order_id).esd_asset_ids:
                self.assertEqual((asset.return_state, asset.state), ("done", "cancelled"))
                self.assertEqual(len(self._credits(asset)), 1, asset.name)

        self.committed(all_credited)

    def _delivered_email_pending(self):
        """A license delivered, its email pending, and no trigger of the email cron left,
        committed: (its order's id, its id, the email cron's id)."""
        _instance_id, _partner_id, order_id = self.setup_committed_order(1)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_provision"), 0)

        def forget_the_triggers(env):
            asset = self._order(env, order_id).esd_asset_ids
            self.assertTrue(asset.welcome_pending)
            cron = env.ref("microsoft_esd.ir_cron_esd_welcome")
            env.cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [cron.id])
            return order_id, asset.id, cron.id

        return self.committed(forget_the_triggers)

    def test_the_email_cron_comes_back_soon_when_every_pending_license_is_locked(self):
        _order_id, asset_id, cron_id = self._delivered_email_pending()
        # Another transaction (a page writing the license, a batch invoicing it) holds its row.
        with self.registry.cursor() as other:
            other.execute("SELECT id FROM esd_asset WHERE id = %s FOR UPDATE", [asset_id])
            self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_welcome"), 0)
            other.rollback()

        def check(env):
            self.assertTrue(env["esd.asset"].browse(asset_id).welcome_pending)
            env.cr.execute(
                "SELECT call_at - (now() at time zone 'UTC') FROM ir_cron_trigger "
                "WHERE cron_id = %s",
                [cron_id],
            )
            waits = [row[0] for row in env.cr.fetchall()]
            # due again within seconds, not at the cron's next interval (15 minutes)
            self.assertTrue(waits, "the email cron is not triggered again")
            self.assertLessEqual(min(waits), datetime.timedelta(seconds=30))

        self.committed(check)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_welcome"), 0)
        self.committed(
            lambda env: self.assertFalse(env["esd.asset"].browse(asset_id).welcome_pending)
        )

    def test_the_email_cron_waits_for_the_batch_holding_an_order_then_sends_its_email(self):
        """A provisioning batch holds the order's row through its CIS calls and triggers the
        email cron when it commits; Odoo's runner drops that trigger if the email cron is
        running then. So the email cron waits for the holder and sends in the same run,
        rather than a minute later at the runners' next poll."""
        order_id, asset_id, _cron_id = self._delivered_email_pending()
        holding, errors = threading.Event(), []

        def batch_holding_the_order():
            try:
                with self.registry.cursor() as cr:
                    cr.execute("SELECT id FROM sale_order WHERE id = %s FOR UPDATE", [order_id])
                    holding.set()
                    time.sleep(1)  # its CIS calls
                    cr.execute(
                        "UPDATE sale_order SET write_date = (now() at time zone 'UTC') "
                        "WHERE id = %s",
                        [order_id],
                    )
            except Exception as exc:  # reported below
                errors.append(exc)
                holding.set()

        holder = threading.Thread(target=batch_holding_the_order)
        holder.start()
        self.assertTrue(holding.wait(10))
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_welcome"), 0)
        holder.join(10)
        self.assertEqual(errors, [])

        def sent(env):
            asset = env["esd.asset"].browse(asset_id)
            self.assertFalse(asset.welcome_pending, "the email waits for another run")
            self.assertEqual(asset.mail_state, "queued")

        self.committed(sent)

    def test_the_price_change_cron_announces_a_sync_once_with_real_commits(self):
        """A catalog sync finds a new Microsoft price; the cron it wakes sends one digest to the
        reseller that bought the product, commits it, and finds nothing more the next time."""

        def setup(env):
            Instance = env["esd.instance"]
            instance = Instance.create(
                {
                    **Instance._esd_values_from_simulator(self.simulator.config_path),
                    "name": "Committed prices",
                    "esd_price_from_cost": True,
                }
            )
            instance.action_test_connection()
            instance._sync_catalog()
            office = env["product.template"].search(
                [("esd_instance_id", "=", instance.id), ("esd_product_id", "=", OFFICE)]
            )
            office.action_esd_activate_for_sale()
            us = env.ref("base.us").id
            reseller, end = env["res.partner"].create(
                [
                    {
                        "name": "Committed Reseller",
                        "is_company": True,
                        "email": "r@committed.example",
                        "country_id": us,
                        "esd_role": "reseller",
                    },
                    {
                        "name": "Committed End Customer",
                        "is_company": True,
                        "email": "e@committed.example",
                        "country_id": us,
                    },
                ]
            )
            order = env["sale.order"].create(
                {
                    "partner_id": reseller.id,
                    "esd_end_customer_id": end.id,
                    "order_line": [Command.create({"product_id": office.product_variant_id.id})],
                }
            )
            order.action_confirm()
            return instance.id, reseller.id, end.id, order.id

        instance_id, reseller_id, end_id, order_id = self.committed(setup)
        self.addCleanup(self._cleanup_prices, instance_id, reseller_id, end_id, order_id)
        self.admin.catalog("reprice", OFFICE, amount=159.99)
        self.committed(lambda env: env["esd.instance"].browse(instance_id)._sync_catalog().id)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_price_changes"), 0)

        def announced(env):
            change = env["esd.price.change"].search([("instance_id", "=", instance_id)])
            self.assertTrue(change.announced)
            digests = env["esd.price.digest"].search([("instance_id", "=", instance_id)])
            self.assertEqual(digests.partner_id.ids, [reseller_id])
            self.assertEqual(digests.state, "sent")
            (line,) = digests.line_ids
            self.assertEqual((line.price_old, line.price_new), (186.99, 199.99), "Sales Price")
            mails = env["mail.mail"].search(
                [("model", "=", "esd.price.digest"), ("res_id", "=", digests.id)]
            )
            self.assertEqual(mails.recipient_ids.ids, [reseller_id])
            return len(digests)

        self.assertEqual(self.committed(announced), 1)
        self.assertEqual(self.run_cron("microsoft_esd.ir_cron_esd_price_changes"), 0)
        self.assertEqual(self.committed(announced), 1, "announced once")

    def _cleanup_prices(self, instance_id, reseller_id, end_id, order_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT id FROM mail_message WHERE (model = 'esd.price.digest' AND res_id IN "
                "(SELECT id FROM esd_price_digest WHERE instance_id = %s)) OR "
                "(model = 'product.template' AND res_id IN "
                "(SELECT id FROM product_template WHERE esd_instance_id = %s))",
                [instance_id, instance_id],
            )
            message_ids = tuple(row[0] for row in cr.fetchall()) or (0,)
            cr.execute("DELETE FROM mail_mail WHERE mail_message_id IN %s", [message_ids])
            cr.execute("DELETE FROM mail_message WHERE id IN %s", [message_ids])
        self._cleanup(instance_id, end_id, order_id)  # the digests and changes go with it
        with self.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'res.partner' AND res_id = %s",
                [reseller_id],
            )
            cr.execute("DELETE FROM res_partner WHERE id = %s", [reseller_id])
