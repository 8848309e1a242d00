"""One writer at a time: every path that writes licenses takes the order's row, then its
licenses; a conflict that still happens is handled quietly; a batch rolled back is recorded from
the answers CIS gave, never ordered twice. Real commits, in threads with cursors of their own."""

import importlib.util
import threading
import time

import psycopg2.errors

from odoo import Command
from odoo.modules.module import get_module_path
from odoo.tests import tagged

from odoo.addons.microsoft_esd.models import esd_jobs
from odoo.addons.microsoft_esd.models.esd_provisioning_run import COUNTS

from .committed import CommittedSimulatorCase
from .common import EsdSimulatorCase, customer_company, demo_transaction, office_for_sale


@tagged("post_install", "-at_install")
class TestLockOrder(CommittedSimulatorCase):
    def _sync_accounts(self, order_ids):
        """The CIS accounts of the orders' licenses made now: the job then only orders."""

        def sync(env):
            assets = env["sale.order"].browse(order_ids).esd_asset_ids
            self.assertEqual(assets._esd_sync_accounts(), assets)

        self.committed(sync)

    def _wait_until_held(self, order_ids, timeout=20):
        """Until another transaction holds the rows of these orders' licenses."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.registry.cursor() as cr:
                cr.execute(
                    "SELECT id FROM esd_asset WHERE sale_order_id = ANY(%s) FOR UPDATE SKIP LOCKED",
                    [order_ids],
                )
                free = cr.fetchall()
                cr.rollback()
            if not free:
                return
            time.sleep(0.02)
        self.fail("the provisioning job never held the licenses")

    def _cis_requests_received(self, at_least, timeout=20):
        deadline = time.monotonic() + timeout
        while self.admin.stats()["cis_requests"] < at_least:
            self.assertLess(time.monotonic(), deadline, "CIS never received the orders")
            time.sleep(0.02)

    def _provision_in_background(self):
        """The provisioning cron, in a thread with a cursor of its own; join() it."""
        errors = []

        def run():
            try:
                with self.registry.cursor() as cr:
                    self._env(cr)["esd.asset"]._cron_provision()
            except Exception as exc:  # reported by the test
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()

        def join():
            thread.join(timeout=60)
            self.assertFalse(thread.is_alive(), "the provisioning job is stuck")
            if errors:
                raise errors[0]

        return join

    # ------------------------------------------------------------------ no batch ordered twice
    def test_a_batch_rolled_back_by_a_concurrent_update_is_recorded_without_ordering_it_again(
        self,
    ):
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(4)
        self._sync_accounts(order_ids)
        self.admin.faults(latency_ms=1500, paths="orders")
        before = self.admin.stats()
        recorded_again = COUNTS["recorded_again"]
        with self.assertNoLogs("odoo", level="ERROR"):
            join = self._provision_in_background()
            self._wait_until_held(order_ids)
            self._cis_requests_received(before["cis_requests"] + 1)
            # While CIS answers, another transaction changes the order's lines and commits: the
            # batch, whose snapshot is older, cannot write their delivered quantities.
            with self.registry.cursor() as cr:
                cr.execute(
                    "UPDATE sale_order_line SET write_date = now() AT TIME ZONE 'UTC' "
                    "WHERE order_id = ANY(%s)",
                    [order_ids],
                )
            join()
        self.assertEqual(COUNTS["recorded_again"] - recorded_again, 4, "the batch met the update")
        after = self.admin.stats()
        # Four orders sent to CIS, once each: the answers were recorded again, not re-asked.
        self.assertEqual(after["cis_requests"] - before["cis_requests"], 4)
        self.assertEqual(after["licenses"] - before["licenses"], 4)

        def delivered(env):
            order = env["sale.order"].browse(order_ids)
            assets = order.esd_asset_ids
            self.assertEqual(set(assets.mapped("lifecycle_state")), {"delivered"})
            self.assertEqual(len({a._esd_secrets()[a.id][0] for a in assets}), 4)
            self.assertEqual(order.order_line.mapped("qty_delivered"), [1.0] * 4)
            self.assertEqual(len(assets.invoice_id), 1)

        self.committed(delivered)

    # ------------------------------------------------------------------ the shop's payment
    def test_a_payment_while_the_job_holds_its_licenses_is_finished_later_without_error(self):
        """A shop order paid by card authorization is confirmed; the capture (done) comes while
        the provisioning job holds its licenses through its CIS calls: with the invoice at
        payment (sale.automatic_invoice), the payment is post-processed a moment later by
        Odoo's payment cron instead of waiting and failing; no error is logged."""
        if not self.committed(lambda env: "payment_demo" in env["ir.module.module"]._installed()):
            self.skipTest("paid with payment_demo (ESD_EXTRA_MODULES)")
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(3, confirm=False)

        def pay_by_authorization(env):
            env["ir.config_parameter"].set_param("sale.automatic_invoice", "True")
            order = env["sale.order"].browse(order_ids)
            order.website_id = env["website"].search([], limit=1)
            state = env.ref("payment.payment_provider_demo").state
            transaction = demo_transaction(env, order, "authorized")
            transaction._set_authorized()
            transaction._post_process()  # the status page's poll: the order is confirmed
            self.assertEqual(order.state, "sale")
            self.assertEqual(len(order.esd_asset_ids), 3)
            return transaction.id, state

        transaction_id, provider_state = self.committed(pay_by_authorization)
        self.addCleanup(self._remove_payment, transaction_id, provider_state)
        self._sync_accounts(order_ids)
        self.admin.faults(latency_ms=1500, paths="orders")

        def capture(env):
            transaction = env["payment.transaction"].browse(transaction_id)
            transaction._set_done()
            started = time.monotonic()
            transaction._post_process()
            return time.monotonic() - started, transaction.is_post_processed

        with self.assertNoLogs("odoo", level="ERROR"):
            join = self._provision_in_background()
            self._wait_until_held(order_ids)
            waited, post_processed = self.committed(capture)
            join()
        self.assertLess(waited, 1.0, "the payment waited for the job's CIS calls")
        self.assertFalse(post_processed, "left to Odoo's payment cron")

        def triggered(env):
            cron = env.ref("payment.cron_post_process_payment_tx")
            return env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])

        self.assertTrue(self.committed(triggered), "the payment cron is not woken")
        with self.assertNoLogs("odoo", level="ERROR"):
            self.committed(lambda env: env["payment.transaction"]._cron_post_process())

        def finished(env):
            transaction = env["payment.transaction"].browse(transaction_id)
            self.assertTrue(transaction.is_post_processed)
            self.assertTrue(transaction.payment_id)
            assets = env["sale.order"].browse(order_ids).esd_asset_ids
            self.assertEqual(set(assets.mapped("lifecycle_state")), {"delivered"})
            invoices = assets.invoice_id
            self.assertEqual((len(invoices), invoices.state), (1, "posted"))
            self.assertEqual(len(invoices.invoice_line_ids), 3, "each license invoiced once")

        self.committed(finished)

    def _paid_not_post_processed(self, licenses=3):
        """A shop order of ``licenses`` licenses, paid (done) and not post-processed yet, with
        the invoice at payment, committed; (its order ids, its transaction id)."""
        if not self.committed(lambda env: "payment_demo" in env["ir.module.module"]._installed()):
            self.skipTest("paid with payment_demo (ESD_EXTRA_MODULES)")
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(licenses, confirm=False)

        def pay(env):
            env["ir.config_parameter"].set_param("sale.automatic_invoice", "True")
            order = env["sale.order"].browse(order_ids)
            order.website_id = env["website"].search([], limit=1)
            state = env.ref("payment.payment_provider_demo").state
            transaction = demo_transaction(env, order)
            transaction._set_done()
            return transaction.id, state

        transaction_id, provider_state = self.committed(pay)
        self.addCleanup(self._remove_payment, transaction_id, provider_state)
        return order_ids, transaction_id

    def _post_processed_once(self, order_ids, transaction_id, licenses=3):
        def once(env):
            transaction = env["payment.transaction"].browse(transaction_id)
            self.assertTrue(transaction.is_post_processed)
            self.assertEqual(len(transaction.payment_id), 1)
            orders = env["sale.order"].browse(order_ids)
            self.assertEqual(orders.mapped("state"), ["sale"])
            self.assertEqual(len(orders.esd_asset_ids), licenses, "the order was confirmed once")
            self.assertEqual(len(orders.invoice_ids), 1)

        self.committed(once)

    def _post_process_in_threads(self, first, second, hold):
        """``first(env)`` then, once it returned, ``second(env)``, each in a thread and a cursor
        of its own; the first commits ``hold`` seconds after it returned (the second's
        transaction begins before). Returns (their results, the second's seconds)."""
        first_done, results, errors = threading.Event(), {}, []

        def run(name, work, then=None):
            try:
                with self.registry.cursor() as cr:
                    started = time.monotonic()
                    results[name] = work(self._env(cr))
                    results[f"{name} seconds"] = time.monotonic() - started
                    if then:
                        then()
            except Exception as exc:  # reported below
                errors.append(exc)
                first_done.set()

        def hold_then_commit():
            first_done.set()
            time.sleep(hold)

        def after_the_first():
            first_done.wait(10)
            run("second", second)

        threads = [
            threading.Thread(target=run, args=("first", first, hold_then_commit)),
            threading.Thread(target=after_the_first),
        ]
        with self.assertNoLogs("odoo", level="ERROR"):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
        self.assertEqual(errors, [])
        return results

    def test_the_status_poll_and_the_payment_cron_post_process_one_payment_once_quietly(self):
        """The customer's status page polls while Odoo's payment cron post-processes the same
        payment (both take every payment not post-processed yet). The poll waits for the
        cron, finds the payment done by it and leaves it: no error logged, one confirmation,
        one invoice."""
        order_ids, transaction_id = self._paid_not_post_processed()

        def post_process(env):
            transaction = env["payment.transaction"].browse(transaction_id)
            transaction._post_process()
            return transaction.is_post_processed

        # the first, the cron's post-processing of this payment (before its commit)
        results = self._post_process_in_threads(post_process, post_process, hold=1)
        # the cron post-processed it; the poll left it, as it was in its own snapshot
        self.assertEqual((results["first"], results["second"]), (True, False))
        self._post_processed_once(order_ids, transaction_id)

    def test_the_payment_cron_leaves_at_once_a_payment_a_poll_is_post_processing(self):
        """The cron would hold one of the server's cron workers, which the license jobs need,
        for as long as the polls post-process: it leaves a payment a poll holds, at once, and
        comes back to it."""
        order_ids, transaction_id = self._paid_not_post_processed()

        def poll(env):
            transaction = env["payment.transaction"].browse(transaction_id)
            transaction._post_process()
            return transaction.is_post_processed

        def cron(env):
            cron = env.ref("payment.cron_post_process_payment_tx")
            env.cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [cron.id])
            env["payment.transaction"]._cron_post_process()
            return env["ir.cron.trigger"].search_count([("cron_id", "=", cron.id)])

        results = self._post_process_in_threads(poll, cron, hold=3)
        self.assertTrue(results["first"])
        self.assertLess(results["second seconds"], 2, "the cron waited for the poll")
        self.assertEqual(results["second"], 1, "the payment cron does not come back")
        self._post_processed_once(order_ids, transaction_id)

    def _remove_payment(self, transaction_id, provider_state):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT move_id FROM account_payment WHERE payment_transaction_id = %s",
                [transaction_id],
            )
            moves = [row[0] for row in cr.fetchall() if row[0]] or [0]
            cr.execute(
                "DELETE FROM account_partial_reconcile WHERE debit_move_id IN "
                "(SELECT id FROM account_move_line WHERE move_id = ANY(%s)) OR credit_move_id "
                "IN (SELECT id FROM account_move_line WHERE move_id = ANY(%s))",
                [moves, moves],
            )
            cr.execute(
                "UPDATE account_move SET origin_payment_id = NULL WHERE id = ANY(%s)", [moves]
            )
            cr.execute(
                "DELETE FROM account_payment WHERE payment_transaction_id = %s", [transaction_id]
            )
            cr.execute("DELETE FROM account_move WHERE id = ANY(%s)", [moves])
            cr.execute("DELETE FROM payment_transaction WHERE id = %s", [transaction_id])
            cr.execute("DELETE FROM ir_config_parameter WHERE key = 'sale.automatic_invoice'")
            cr.execute(
                "UPDATE payment_provider SET state = %s WHERE id = "
                "(SELECT res_id FROM ir_model_data WHERE module = 'payment' "
                "AND name = 'payment_provider_demo')",
                [provider_state],
            )

    # ------------------------------------------------------------------ other writers
    def test_the_invoicing_leaves_an_order_another_transaction_holds_quietly(self):
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2)

        def deliver_without_invoicing(env):
            env["esd.asset"]._esd_provision_batch()  # no invoicing in a batch
            self.assertEqual(
                set(env["sale.order"].browse(order_ids).esd_asset_ids.mapped("lifecycle_state")),
                {"delivered"},
            )

        self.committed(deliver_without_invoicing)
        # The email job holds the order (its row, then its licenses) while it queues emails.
        with self.registry.cursor() as holder, self.assertNoLogs("odoo", level="ERROR"):
            holder.execute("SELECT id FROM sale_order WHERE id = ANY(%s) FOR UPDATE", [order_ids])
            self.committed(lambda env: env["sale.order"]._esd_invoice_ready())
            holder.rollback()
        uninvoiced = self.committed(
            lambda env: env["sale.order"].browse(order_ids).esd_asset_ids.invoice_id
        )
        self.assertFalse(uninvoiced)
        with self.assertNoLogs("odoo", level="ERROR"):
            self.committed(lambda env: env["sale.order"]._esd_invoice_ready())
        invoices = self.committed(
            lambda env: env["sale.order"].browse(order_ids).esd_asset_ids.invoice_id.ids
        )
        self.assertEqual(len(invoices), 1)

    def test_a_portal_action_on_a_license_whose_order_a_job_holds_is_refused_quietly(self):
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2)
        self.committed(lambda env: env["esd.asset"]._esd_provision_pending())
        with self.registry.cursor() as holder, self.assertNoLogs("odoo", level="ERROR"):
            holder.execute("SELECT id FROM sale_order WHERE id = ANY(%s) FOR UPDATE", [order_ids])

            def update_status(env):
                asset = env["sale.order"].browse(order_ids).esd_asset_ids[:1]
                with self.assertRaisesRegex(Exception, "right now: try again in a minute"):
                    asset._esd_portal_update_status()

            self.committed(update_status)
            holder.rollback()

    def test_the_confirmation_pages_sign_up_button_never_waits_on_the_customers_row(self):
        """Odoo's confirmation page calls signup_prepare() on each render: while another
        transaction holds the customer's row (the invoicing of its licenses), it neither waits
        nor fails, and the signup link it shows still works; a partner of another signup type
        is still changed."""
        _instance_id, partner_id, _order_ids = self.setup_committed_orders(1, confirm=False)
        self.committed(lambda env: env["res.partner"].browse(partner_id).signup_prepare())
        with self.registry.cursor() as holder, self.assertNoLogs("odoo", level="ERROR"):
            holder.execute("SELECT id FROM res_partner WHERE id = %s FOR UPDATE", [partner_id])

            def render(env):
                env.cr.execute("SET LOCAL lock_timeout = '500ms'")
                partner = env["res.partner"].browse(partner_id)
                self.assertTrue(partner.signup_prepare())
                env.flush_all()
                token = partner._generate_signup_token()
                self.assertEqual(env["res.partner"]._get_partner_from_token(token), partner)

            self.committed(render)
            holder.rollback()

        def reset_then_signup(env):
            partner = env["res.partner"].browse(partner_id)
            partner.signup_prepare(signup_type="reset")
            self.assertEqual(partner.signup_type, "reset")
            partner.signup_prepare()
            self.assertEqual(partner.signup_type, "signup")

        self.committed(reset_then_signup)

    def test_a_serialization_failure_is_quiet_only_where_it_is_expected(self):
        """Odoo's "bad query" line for a conflict a job handles is not logged; the same
        conflict elsewhere, or another failing query, still is."""
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(1)

        def conflict(env, expected):
            env.cr.execute("SELECT 1")  # this transaction's snapshot
            with self.registry.cursor() as other:
                other.execute(
                    "UPDATE sale_order SET write_date = now() WHERE id = ANY(%s)", [order_ids]
                )
            try:
                if expected:
                    with esd_jobs.expected_conflicts():
                        env.cr.execute(
                            "SELECT id FROM sale_order WHERE id = ANY(%s) FOR UPDATE", [order_ids]
                        )
                else:
                    env.cr.execute(
                        "SELECT id FROM sale_order WHERE id = ANY(%s) FOR UPDATE", [order_ids]
                    )
            except esd_jobs.CONFLICTS:
                env.cr.rollback()
                return True
            return False

        with self.assertNoLogs("odoo.sql_db", level="ERROR"):
            self.assertTrue(self.committed(lambda env: conflict(env, True)))
        with self.assertLogs("odoo.sql_db", level="ERROR"):
            self.assertTrue(self.committed(lambda env: conflict(env, False)))
        with self.assertLogs("odoo.sql_db", level="ERROR"), esd_jobs.expected_conflicts():
            self.committed(self._bad_query)

    def _bad_query(self, env):
        try:
            env.cr.execute("SELECT no_such_column FROM sale_order")
        except Exception:  # logged by Odoo: not a conflict
            env.cr.rollback()

    # ------------------------------------------------------------------ first-use writes
    def test_licenses_and_their_order_have_their_share_token_from_the_start(self):
        _instance_id, _partner_id, order_ids = self.setup_committed_orders(2)

        def tokens(env):
            order = env["sale.order"].browse(order_ids)
            self.assertTrue(order.access_token)
            self.assertTrue(all(order.esd_asset_ids.mapped("access_token")))

        self.committed(tokens)
        # The confirmation page while a batch holds the licenses: it writes nothing, so it
        # waits for nothing (a write would wait for the batch's CIS calls).
        self.admin.faults(latency_ms=1500, paths="orders")
        self._sync_accounts(order_ids)
        join = self._provision_in_background()
        self._wait_until_held(order_ids)

        def page(env):
            env.cr.execute("SET LOCAL lock_timeout = '200ms'")
            order = env["sale.order"].browse(order_ids)
            order.sudo()._portal_ensure_token()
            urls = [asset.get_portal_url() for asset in order.esd_asset_ids]
            env.flush_all()
            return urls

        self.assertEqual(len(self.committed(page)), 2)
        join()


@tagged("post_install", "-at_install")
class TestShareTokens(EsdSimulatorCase):
    def test_the_upgrade_gives_every_license_and_license_order_its_share_token(self):
        """Licenses and their orders get their share token when they are made (a page never
        writes one); those made before 18.0.1.7.0 get it at the upgrade."""
        self.instance._sync_catalog()
        office = office_for_sale(self.env, 100, self.instance)
        order = self.env["sale.order"].create(
            {
                "partner_id": customer_company(self.env).id,
                "order_line": [
                    Command.create(
                        {"product_id": office.product_variant_id.id, "product_uom_qty": 2}
                    )
                ],
            }
        )
        order.action_confirm()
        assets = order.esd_asset_ids
        self.assertTrue(order.access_token)
        self.assertEqual(len(set(assets.mapped("access_token")) - {False}), 2)
        self.env.cr.execute(
            "UPDATE esd_asset SET access_token = NULL WHERE id IN %s", [tuple(assets.ids)]
        )
        self.env.cr.execute("UPDATE sale_order SET access_token = NULL WHERE id = %s", [order.id])
        self.env.invalidate_all()
        path = get_module_path("microsoft_esd") + "/migrations/18.0.1.7.0/post-access-tokens.py"
        spec = importlib.util.spec_from_file_location("esd_migration_tokens", path)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(self.env.cr, "18.0.1.6.0")
        self.env.invalidate_all()
        self.assertTrue(order.access_token)
        self.assertEqual(len(set(assets.mapped("access_token")) - {False}), 2)


@tagged("post_install", "-at_install")
class TestQuietUniqueViolations(EsdSimulatorCase):
    def _violate_unique(self, *unique_constraints):
        """A real unique violation (of esd_test_unique_x_key), in a savepoint; whether it was
        raised."""
        cr = self.env.cr
        cr.execute(
            "CREATE TEMP TABLE IF NOT EXISTS esd_test_unique "
            "(x int CONSTRAINT esd_test_unique_x_key UNIQUE)"
        )
        cr.execute("INSERT INTO esd_test_unique VALUES (1) ON CONFLICT DO NOTHING")
        try:
            with esd_jobs.expected_conflicts(*unique_constraints), cr.savepoint(flush=False):
                cr.execute("INSERT INTO esd_test_unique VALUES (1)")
        except psycopg2.errors.UniqueViolation:
            return True
        return False

    def test_a_unique_violation_is_quiet_only_for_the_constraints_the_caller_expects(self):
        """The invoicing expects another worker to post a journal's same first number at the
        same time (account_move_unique_name) and defers: no "bad query" ERROR for it; any other
        unique violation, or one outside such a block, is still logged."""
        with self.assertNoLogs("odoo.sql_db", level="ERROR"):
            self.assertTrue(self._violate_unique("esd_test_unique_x_key"))
        with self.assertLogs("odoo.sql_db", level="ERROR"):
            self.assertTrue(self._violate_unique("account_move_unique_name"))
        with self.assertLogs("odoo.sql_db", level="ERROR"):
            self.assertTrue(self._violate_unique())
