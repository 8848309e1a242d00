from odoo import api, fields, models
from odoo.exceptions import UserError

from ..microsoft_esd import lifecycle
from ..microsoft_esd.api import Problem, iso
from .esd_api_access import api_grant

# The changes of a license that resellers' webhooks hear about.
EVENT_OF_CHANGE = {
    "delivered": "license.delivered",
    "failed": "license.failed",
    "returned": "license.returned",
    "returned_elsewhere": "license.returned",
}
# A license being ordered: the API tells the caller when to ask again.
PENDING_STATES = (lifecycle.TO_ORDER, lifecycle.WAITING)
PENDING_RETRY_AFTER = 5


class EsdAsset(models.Model):
    """A license in the reseller API and its webhooks.

    What a caller reads is decided by record rules (the portal's: its company's licenses and
    those it was billed for, in the grant's company); its key by ``_esd_owned``, for the caller
    itself. A change of state writes the outbox messages of the resellers listening, in the
    same transaction (``_esd_update_state``).
    """

    _inherit = "esd.asset"

    def _esd_update_state(self, change, vals):
        changed = super()._esd_update_state(change, vals)
        event = EVENT_OF_CHANGE.get(change)
        if event and changed:
            changed._esd_emit_event(event)
        return changed

    def _esd_emit_event(self, event):
        """The outbox messages of ``event`` for these licenses (ids and states, no key)."""
        self.env["esd.webhook.delivery"]._esd_emit(
            event,
            [
                (
                    asset.company_id,
                    asset.customer_id | asset.billing_partner_id,
                    asset.name,
                    lambda asset=asset: {"license": asset._esd_event_values()},
                )
                for asset in self.sudo()
            ],
        )

    def _esd_event_values(self):
        """A license in a webhook message: ids and states."""
        self.ensure_one()
        return {
            **self._esd_api_state_values(),
            "customer": {"id": self.customer_id.id},
            "product": {"id": self.product_id.id, "sku": self.product_id.esd_sku or None},
        }

    def _esd_api_state_values(self):
        """What the API and the webhooks say of every license: its ids, state and order."""
        self.ensure_one()
        asset = self.sudo()
        order = asset.sale_order_id
        return {
            "id": asset.id,
            "name": asset.name,
            "state": asset.lifecycle_state,
            "token_status": asset.token_status or None,
            "order": order
            and {"id": order.id, "name": order.name, "reference": order.client_order_ref or None},
        }

    # ------------------------------------------------------------------ the API
    @api.model
    def _esd_api_search(self, after_id, limit, state=None, customer=None, updated_since=None):
        """The caller's licenses after ``after_id`` in id order, at most ``limit`` (record rules
        decide which); and whether more follow."""
        api_grant(self.env)
        domain = [("id", ">", after_id)]
        if state:
            domain.append(("lifecycle_state", "=", state))
        if customer:
            domain.append(("customer_id", "=", customer))
        if updated_since:
            domain.append(("write_date", ">=", updated_since))
        found = self.search(domain, order="id", limit=limit + 1)
        return found[:limit], len(found) > limit

    def _esd_api_values(self, with_key=False):
        """The license as the caller reads it: the price and credit note to the billed company
        only; with ``with_key``, the key and activation link once delivered, to its owners
        only (``_esd_owned``, decided for the caller)."""
        self.ensure_one()
        asset = self.sudo()
        billed = self.env.user.partner_id.commercial_partner_id == asset.billing_partner_id
        template = asset.product_id.product_tmpl_id
        credit = asset.credit_note_id if billed else None
        values = {
            **self._esd_api_state_values(),
            "customer": {"id": asset.customer_id.id, "name": asset.customer_id.name},
            "product": {
                "id": asset.product_id.id,
                "name": asset.product_id.name,
                "sku": template.esd_sku or None,
                "cis_product_id": template.esd_product_id or None,
            },
            "purchase_date": fields.Date.to_string(asset.purchase_date),
            "activation_date": iso(asset.activation_date),
            "cancellation_request": asset.cancel_request_state,
            "return_state": asset.return_state,
            "price": (
                {"amount": asset.price_unit, "currency": asset.currency_id.name} if billed else None
            ),
            "credit_note": (
                {
                    "id": credit.id,
                    "name": credit.name,
                    "state": credit.state,
                    "amount_total": credit.amount_total,
                    "currency": credit.currency_id.name,
                }
                if credit
                else None
            ),
            "updated_at": iso(asset.write_date),
        }
        if with_key:
            values.update(key=None, activation_link=None)
            delivered = asset.token_tail and asset.lifecycle_state == lifecycle.DELIVERED
            if delivered and self._esd_owned():
                values["key"], values["activation_link"] = asset._esd_secrets()[asset.id]
        return values

    def _esd_api_retry_after(self):
        """Seconds after which a license still being ordered is worth asking for again; None
        once it is not."""
        self.ensure_one()
        if self.lifecycle_state not in PENDING_STATES:
            return None
        due = self.sudo().next_attempt_at
        if due:
            wait = (due - fields.Datetime.now()).total_seconds()
            return max(PENDING_RETRY_AFTER, int(wait) + 1)
        return PENDING_RETRY_AFTER

    def _esd_api_request_return(self, comment, key_name):
        """The portal's cancellation request, for the caller that owns this license: it waits
        for an ESD user's approval, then the license is returned and credited."""
        self.ensure_one()
        api_grant(self.env)
        if not self._esd_owned():
            raise Problem("license-not-yours")
        asset = self.sudo()
        if asset.cancel_request_state == "pending" or asset.return_state == "requested":
            raise Problem("return-already-requested")
        try:
            with self.env.cr.savepoint():
                asset._esd_request_cancellation(comment, self.env.user.partner_id)
        except UserError as exc:
            raise Problem("not-returnable", str(exc)) from None
        asset.message_post(
            body=self.env._(
                "Requested through the reseller API by %(user)s with the API key %(key)s.",
                user=self.env.user.name,
                key=key_name,
            ),
            subtype_xmlid="mail.mt_note",
        )
        return self
