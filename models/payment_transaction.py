import contextvars
import datetime
import logging

import psycopg2.errors

from odoo import fields, models
from odoo.tools import str2bool

from . import esd_jobs

_logger = logging.getLogger(__name__)

# True while a payment confirms the orders it paid (set by code only: a request's context cannot
# set it). Money was taken: such an order confirms whatever happens, and a license that cannot
# be ordered fails with its reason in the provisioning job.
PAID_CONFIRMATION = contextvars.ContextVar("esd_paid_confirmation", default=False)
# A payment whose orders' licenses a job was working on is post-processed again this soon.
POST_PROCESS_AGAIN_SECONDS = 10
# A payment another request or job is post-processing is waited for this long, at most, by the
# status page's poll; Odoo's payment cron leaves it at once (it would hold a cron worker, which
# the license jobs need, through every poll's post-processing).
POST_PROCESS_WAIT_SECONDS = 5
# True while Odoo's payment cron post-processes (set by code only).
IN_PAYMENT_CRON = contextvars.ContextVar("esd_in_payment_cron", default=False)


class PaymentTransaction(models.Model):
    _inherit = "payment.transaction"

    def _check_amount_and_confirm_order(self):
        token = PAID_CONFIRMATION.set(True)
        try:
            return super()._check_amount_and_confirm_order()
        finally:
            PAID_CONFIRMATION.reset(token)

    def _cron_post_process(self):
        token = IN_PAYMENT_CRON.set(True)
        try:
            return super()._cron_post_process()
        finally:
            IN_PAYMENT_CRON.reset(token)

    def _post_process(self):
        """Each payment is post-processed by one transaction at a time: the status page's poll
        and Odoo's payment cron may take the same one at once. Its row is locked first. A poll
        waits for the holder, finds the payment changed and leaves it; the cron leaves a held
        one at once. What is left goes to the payment cron (which finds it done), quietly,
        instead of failing on the other's changes (a serialization failure logged as an error,
        a poll answered "retry").

        A payment that invoices orders whose licenses a job is working on right now (a
        provisioning batch holds an order's row through its CIS calls) is post-processed a
        moment later by Odoo's own cron, rather than waiting for the job and then failing on
        its changes: the invoice and the payment follow once the job is done."""
        held, later = self._esd_hold_for_post_processing(
            0 if IN_PAYMENT_CRON.get() else POST_PROCESS_WAIT_SECONDS
        )
        busy = held._esd_busy_orders()
        if busy or later:
            _logger.info(
                "payment transactions %s: another transaction is working on them or on their "
                "orders' licenses, post-processed again in %s s",
                (busy | later).ids,
                POST_PROCESS_AGAIN_SECONDS,
            )
            self.env.ref("payment.cron_post_process_payment_tx").sudo()._trigger(
                fields.Datetime.now() + datetime.timedelta(seconds=POST_PROCESS_AGAIN_SECONDS)
            )
        return super(PaymentTransaction, held - busy)._post_process()

    def _esd_hold_for_post_processing(self, wait):
        """Lock these transactions' rows, one by one, waiting up to ``wait`` seconds (0: not
        at all) for another transaction holding one. Returns (those held, those left for
        later): still held by another after the wait, or changed by another since this
        transaction began (the other post-processed it, most likely; the payment cron finds
        out)."""
        self.env.flush_all()
        cr = self.env.cr
        held, later = self.browse(), self.browse()
        for tx in self.sorted("id"):
            try:
                with (
                    esd_jobs.expected_conflicts(),
                    cr.savepoint(flush=False),
                    esd_jobs.lock_wait(cr, wait),
                ):
                    cr.execute(
                        "SELECT id FROM payment_transaction WHERE id = %s FOR UPDATE"
                        + ("" if wait else " NOWAIT"),
                        [tx.id],
                    )
                held |= tx
            except (psycopg2.errors.LockNotAvailable, psycopg2.errors.SerializationFailure):
                later |= tx
        return held, later

    def _esd_busy_orders(self):
        """The done transactions that would invoice (sale.automatic_invoice) a confirmed order
        with licenses whose row or licenses another transaction holds or changed since this
        one began. Those that are free are locked here, the order's row first (the lock order
        of every writer of licenses), for the rest of this transaction."""
        param = self.env["ir.config_parameter"].sudo().get_param("sale.automatic_invoice")
        if not str2bool(param or "False"):
            return self.browse()
        busy = self.browse()
        for tx in self.filtered(lambda t: t.state == "done"):
            orders = tx.sudo().sale_order_ids.filtered(
                lambda o: o.state == "sale" and o.esd_asset_ids
            )
            if not orders:
                continue
            try:
                # A flushing savepoint: this transaction's own writes are not undone with it.
                with esd_jobs.expected_conflicts(), self.env.cr.savepoint():
                    held = all(order._esd_hold_for_invoicing() for order in orders)
                    if not held:
                        raise _Busy()
            except (_Busy, *esd_jobs.CONFLICTS):
                busy |= tx
        return busy


class _Busy(Exception):
    """An order's locks could not all be taken: those taken are released with the savepoint."""
