import contextlib
import logging
from collections import defaultdict

import psycopg2.errors
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import clean_context, format_amount

from ..microsoft_esd.errors import redact
from . import esd_jobs
from .esd_access import ESD_MANAGER, check_caller
from .payment_transaction import PAID_CONFIRMATION

_logger = logging.getLogger(__name__)

# An order another transaction held is invoiced again this many seconds later.
INVOICE_AGAIN_SECONDS = 3


class SaleOrder(models.Model):
    _inherit = "sale.order"

    esd_end_customer_id = fields.Many2one(
        "res.partner",
        "End Customer",
        index=True,
        tracking=True,
        help="A reseller ordering on behalf of an end customer: the licenses belong to the end "
        "customer, the reseller (the order's customer) is billed.",
    )
    esd_asset_ids = fields.One2many("esd.asset", "sale_order_id", string="Licenses")
    esd_asset_count = fields.Integer(compute="_compute_esd_asset_count")
    has_esd_lines = fields.Boolean(compute="_compute_esd_asset_count")
    esd_checkout_choice = fields.Selection(
        [("company", "For my company"), ("customer", "For one of my customers")],
        "Licenses For",
        readonly=True,
        copy=False,
        help="What a reseller answered in the shop's checkout: its own licenses, or an end "
        "customer's.",
    )
    # {product id: lowest unit price an ESD manager allowed below cost}; written by
    # action_esd_allow_below_cost only (through sudo), read by no user.
    esd_below_cost_allowance = fields.Json(copy=False, groups=fields.NO_ACCESS)
    esd_below_cost_warning = fields.Text(
        "Below Cost",
        compute="_compute_esd_below_cost",
        help="The licenses this order sells below their cost, not allowed by an ESD manager.",
    )
    esd_below_cost_allowed = fields.Boolean(
        "Below Cost Allowed",
        compute="_compute_esd_below_cost",
        help="Licenses of this order sell below cost, at prices an ESD manager allowed.",
    )
    esd_buyer_user_id = fields.Many2one(
        "res.users",
        "Bought Online By",
        readonly=True,
        copy=False,
        groups="base.group_user",
        help="The portal login that paid this order in the shop, recorded from its own "
        "request: it sees the order's license keys while it belongs to the same company.",
    )
    esd_invoice_error = fields.Text(
        "License Invoicing Error",
        readonly=True,
        copy=False,
        help="Why the delivered licenses of this order could not be invoiced; the job leaves "
        "the order alone until someone retries.",
    )

    @api.depends("esd_asset_ids", "order_line.product_id")
    def _compute_esd_asset_count(self):
        for order in self:
            order.esd_asset_count = len(order.esd_asset_ids)
            order.has_esd_lines = any(order.order_line.mapped("is_esd"))

    @api.depends(
        "order_line.esd_below_cost", "order_line.price_reduce_taxexcl", "order_line.product_id"
    )
    def _compute_esd_below_cost(self):
        for order in self:
            below = order.order_line.filtered("esd_below_cost")
            refused = order._esd_below_cost_lines()
            order.esd_below_cost_warning = "\n".join(
                line._esd_below_cost_text() for line in refused
            )
            order.esd_below_cost_allowed = bool(below) and not refused

    def _compute_amounts(self):
        """An ESD line of N licenses becomes N lines of one at confirmation, each with its own
        rounded taxes (and so does its invoice): its order's totals are those of the N lines,
        in the cart and the quotation as on the invoice and the payment."""
        per_license = self.filtered(lambda o: o._esd_lines_to_split())
        res = super(SaleOrder, self - per_license)._compute_amounts()
        for order in per_license:
            totals = order._esd_tax_totals()
            order.amount_untaxed = totals["base_amount_currency"]
            order.amount_tax = totals["tax_amount_currency"]
            order.amount_total = totals["total_amount_currency"]
        return res

    def _compute_tax_totals(self):
        per_license = self.filtered(lambda o: o._esd_lines_to_split())
        res = super(SaleOrder, self - per_license)._compute_tax_totals()
        for order in per_license:
            order.tax_totals = order._esd_tax_totals()
        return res

    def _esd_lines_to_split(self):
        """The ESD lines of more than one license (a cart, a quotation)."""
        return self.order_line.filtered(
            lambda line: line.is_esd and not line.display_type and line._esd_license_count() > 1
        )

    def _esd_tax_totals(self):
        """Odoo's tax totals of the order (sale's _compute_amounts), its ESD lines counted as
        the lines of one license they become."""
        self.ensure_one()
        AccountTax = self.env["account.tax"]
        base_lines = []
        for line in self.order_line.filtered(lambda x: not x.display_type):
            count = line._esd_license_count() if line.is_esd else 1
            if count > 1:
                base_lines += [
                    line._prepare_base_line_for_taxes_computation(quantity=1.0)
                    for _license in range(count)
                ]
            else:
                base_lines.append(line._prepare_base_line_for_taxes_computation())
        AccountTax._add_tax_details_in_base_lines(base_lines, self.company_id)
        AccountTax._round_base_lines_tax_details(base_lines, self.company_id)
        return AccountTax._get_tax_totals_summary(
            base_lines=base_lines,
            currency=self.currency_id or self.company_id.currency_id,
            company=self.company_id,
        )

    @api.constrains("esd_end_customer_id", "partner_id")
    def _check_end_customer(self):
        for order in self:
            end = order.esd_end_customer_id.commercial_partner_id
            if end and end == order.partner_id.commercial_partner_id:
                raise UserError(
                    self.env._(
                        "The end customer of %s is the customer itself: leave End Customer empty.",
                        order.name,
                    )
                )

    # ------------------------------------------------------------------ CRUD
    @api.model_create_multi
    def create(self, vals_list):
        if any("esd_buyer_user_id" in vals for vals in vals_list):
            self._esd_check_buyer_write()
        return super().create(vals_list)

    def write(self, vals):
        if "esd_buyer_user_id" in vals:
            self._esd_check_buyer_write()
        return super().write(vals)

    def _esd_check_buyer_write(self):
        """The buyer comes from the shop's own payment request, never from a caller's values."""
        if not self.env.su:
            raise AccessError(
                self.env._("The online buyer of an order is recorded by the shop, not by hand.")
            )

    # ------------------------------------------------------------------ confirmation
    def action_confirm(self):
        """Split ESD lines, check what CIS will check, confirm, create the licenses.

        Confirmation never calls CIS (a paid web order must always confirm): the provisioning
        job synchronizes the CIS accounts and orders the licenses.
        """
        esd_orders = self.filtered(lambda o: any(o.order_line.mapped("is_esd")))
        for order in esd_orders:
            try:
                order.order_line._esd_split()
            except ValueError as exc:
                raise UserError(
                    self.env._("%(order)s: %(error)s", order=order.name, error=exc)
                ) from None
        # A paid order confirms whatever happens (money was taken), and a license that cannot
        # be ordered fails with the reason, in the job. Every other confirmation, a shop order's
        # included, is checked here.
        if not PAID_CONFIRMATION.get():
            esd_orders._esd_check_sellable()
            esd_orders._esd_check_parties()
        below_cost = {order: order.order_line.filtered("esd_below_cost") for order in esd_orders}
        result = super().action_confirm()
        for order, lines in below_cost.items():
            if lines:
                order._esd_note_below_cost(lines)
        return result

    def _action_confirm(self):
        """Sale's confirmation hook: the licenses of the confirmed orders, created under a clean
        context (a form's ``default_*`` keys are not defaults of a license)."""
        result = super()._action_confirm()
        esd_orders = self.filtered(lambda o: any(o.order_line.mapped("is_esd")))
        # The share token the confirmation and portal pages put in their links, made now: a
        # page never writes an order that a provisioning batch holds through its CIS calls.
        for order in esd_orders.sudo():
            order._portal_ensure_token()
        assets = esd_orders.with_context(clean_context(self.env.context))._esd_create_assets()
        for order in esd_orders.filtered("esd_buyer_user_id"):
            self.env["esd.grant"]._esd_give(
                order.esd_buyer_user_id, "keys", order.company_id, order=order
            )
        if assets:
            # The CIS accounts, created here and synchronized by the job. One that another
            # confirmation created since this transaction began (the same customer's other
            # order, paid at the same moment) is not in its snapshot: the job finds it. The
            # confirmation's own writes are flushed first, outside the savepoint: a conflict
            # of theirs is not this one's to take.
            self.env.flush_all()
            with (
                contextlib.suppress(*esd_jobs.CONFLICTS),
                esd_jobs.expected_conflicts(),
                self.env.cr.savepoint(),
            ):
                assets._esd_accounts()
            assets._esd_trigger_provisioning()
        return result

    def _action_cancel(self):
        """Stop the licenses Microsoft has not delivered; refuse while some were delivered.

        A license never sent to Microsoft, or refused by it, is stopped: cancelled here, never
        ordered (the job claims active licenses only, and a license row this writes is locked
        until the cancellation commits). A delivered license, or one whose order may have
        reached Microsoft (sent, answer pending), is a key Microsoft bills: the order is not
        cancelled until it is returned (Cancel License) or delivered and returned.
        """
        assets = self.sudo().esd_asset_ids.filtered(lambda a: a.state == "active")
        unstoppable = assets.filtered(lambda a: not a._esd_stoppable())
        if unstoppable:
            raise UserError(
                self.env._(
                    "%(orders)s cannot be cancelled: Microsoft delivered, is delivering or may "
                    "hold %(licenses)s. Return delivered licenses first with Cancel License "
                    "(within the return window); for a failed one whose answer was lost, press "
                    "Retry provisioning to record what Microsoft holds. Or keep the order.",
                    orders=", ".join(unstoppable.sale_order_id.mapped("name")),
                    licenses=", ".join(unstoppable.mapped("name")),
                )
            )
        assets._esd_set_stopped()
        return super()._action_cancel()

    # ------------------------------------------------------------------ below cost
    def _esd_below_cost_lines(self):
        """The lines of this order that sell a license below cost at a price no ESD manager
        allowed."""
        self.ensure_one()
        allowance = self.sudo().esd_below_cost_allowance or {}
        currency = self.currency_id
        return self.order_line.filtered(
            lambda line: (
                line.esd_below_cost
                and (
                    str(line.product_id.id) not in allowance
                    or currency.compare_amounts(
                        line.price_reduce_taxexcl, allowance[str(line.product_id.id)]
                    )
                    < 0
                )
            )
        )

    def _esd_note_below_cost(self, lines):
        """The order's chatter records a confirmation below cost: who, which licenses, at what
        price and cost, and whether an ESD manager allowed it."""
        self.ensure_one()
        refused = self._esd_below_cost_lines()
        body = Markup("<p>%s</p><ul>%s</ul>") % (
            self.env._("Confirmed by %s with licenses below cost:", self.env.user.name)
            if refused
            else self.env._(
                "Confirmed by %s with licenses below cost, as an ESD manager allowed:",
                self.env.user.name,
            ),
            Markup("").join(
                Markup("<li>%s</li>") % text
                for text in dict.fromkeys(line._esd_below_cost_text() for line in lines)
            ),
        )
        self.message_post(body=body, subtype_xmlid="mail.mt_note")

    def action_esd_allow_below_cost(self):
        """Allow this quotation's licenses below cost at their current prices (ESD managers);
        the chatter records who allowed what. A lower price later needs a new allowance."""
        check_caller(self, ESD_MANAGER, "read")
        for order in self:
            if order.state not in ("draft", "sent"):
                raise UserError(
                    self.env._(
                        "%s is no longer a quotation: selling below cost is allowed before "
                        "confirmation.",
                        order.name,
                    )
                )
            lines = order._esd_below_cost_lines()
            if not lines:
                raise UserError(
                    self.env._("%s sells no license below cost: nothing to allow.", order.name)
                )
            allowance = dict(order.sudo().esd_below_cost_allowance or {})
            for line in lines:
                key, price = str(line.product_id.id), line.price_reduce_taxexcl
                allowance[key] = min(allowance.get(key, price), price)
            order.sudo().esd_below_cost_allowance = allowance
            order.message_post(
                body=Markup("<p>%s</p><ul>%s</ul>")
                % (
                    self.env._("%s allowed selling these licenses below cost:", self.env.user.name),
                    Markup("").join(
                        Markup("<li>%s</li>") % text
                        for text in dict.fromkeys(line._esd_below_cost_text() for line in lines)
                    ),
                ),
                subtype_xmlid="mail.mt_note",
            )
        return True

    def _esd_parties(self):
        """(customer, billed partner) of the licenses: commercial entities, as CIS knows them."""
        self.ensure_one()
        billed = self.partner_id.commercial_partner_id
        customer = self.esd_end_customer_id.commercial_partner_id or billed
        return customer, billed

    def _esd_check_sellable(self):
        for line in self.order_line.filtered("is_esd"):
            template = line.product_id.product_tmpl_id
            instance_company = template.sudo().esd_instance_id.company_id
            if instance_company and instance_company != line.order_id.company_id:
                raise UserError(
                    self.env._(
                        "%(product)s is ordered through an ESD instance of %(company)s, not of "
                        "%(order_company)s: sell it from %(company)s.",
                        product=line.product_id.display_name,
                        company=instance_company.name,
                        order_company=line.order_id.company_id.name,
                    )
                )
            if template.esd_catalog_status == "discontinued" or not template.esd_instance_id:
                raise UserError(
                    self.env._(
                        "%(product)s on %(order)s can no longer be ordered from Microsoft "
                        "(discontinued): remove the line.",
                        product=line.product_id.display_name,
                        order=line.order_id.name,
                    )
                )

    def _esd_check_parties(self):
        """The rules CIS enforces on the customer and the reseller, checked locally."""
        for order in self:
            customer, billed = order._esd_parties()
            customer._esd_check_syncable(customer.esd_role or "user")
            if billed != customer:
                if billed.esd_role and billed.esd_role != "reseller":
                    raise UserError(
                        self.env._(
                            "%s orders for an end customer but its ESD role is not Reseller: "
                            "change it in its Sync Options.",
                            billed.display_name,
                        )
                    )
                billed._esd_check_syncable("reseller")

    def _esd_create_assets(self):
        """One license per ESD line; only the missing ones, so confirming again is safe."""
        vals_list = []
        for order in self:
            for line in order.order_line.filtered("is_esd"):
                # Licenses stopped or returned by an earlier cancellation do not count.
                active = line.esd_asset_ids.filtered(lambda a: a.state == "active")
                missing = int(line.product_uom_qty) - len(active)
                vals_list += [line._esd_prepare_asset_values()] * max(0, missing)
        # The order's chatter records the confirmation; no "created" note on each license.
        Asset = self.env["esd.asset"].sudo().with_context(mail_create_nolog=True)
        return Asset.create(vals_list)

    def _esd_buyer(self):
        """The portal login that paid this order in the shop (it sees the keys), if any."""
        self.ensure_one()
        return self.sudo().esd_buyer_user_id

    def _esd_record_buyer(self, user):
        """The shop's payment request of ``user`` (the visitor itself): a portal login of the
        order's customer becomes its buyer. Called by the checkout controller only."""
        self.ensure_one()
        user = user.sudo()
        buyer = (
            user.share
            and not user._is_public()
            and self.website_id
            and self.state in ("draft", "sent")
            and user.partner_id.commercial_partner_id == self.partner_id.commercial_partner_id
        )
        self.sudo().esd_buyer_user_id = user if buyer else False

    # ------------------------------------------------------------------ the shop
    def _esd_is_reseller_cart(self):
        """A reseller buying licenses in the shop: it says whom they are for."""
        self.ensure_one()
        return bool(
            self.website_id
            and self.partner_id._esd_is_reseller()
            and self.order_line.filtered("is_esd")
        )

    def _esd_needs_end_customer_choice(self):
        self.ensure_one()
        return self._esd_is_reseller_cart() and not self.esd_checkout_choice

    def _esd_country_refusals(self, customer):
        """Why ``customer`` cannot receive the licenses of this order: one sentence per product
        whose ESD instance sells for another country."""
        refusals = []
        for product in self.order_line.filtered("is_esd").product_id:
            instance = product.product_tmpl_id.esd_instance_id
            if instance.country_id and customer.country_id != instance.country_id:
                refusals.append(
                    self.env._(
                        "%(product)s is sold for %(country)s only, and %(customer)s is in "
                        "%(theirs)s.",
                        product=product.display_name,
                        country=instance.country_id.name,
                        customer=customer.name,
                        theirs=customer.country_id.name or self.env._("no country"),
                    )
                )
        return refusals

    def _esd_set_end_customer(self, customer):
        """The reseller's answer: its own licenses (no customer), or this end customer's."""
        self.ensure_one()
        self.sudo().write(
            {
                "esd_checkout_choice": "customer" if customer else "company",
                "esd_end_customer_id": customer.id if customer else False,
            }
        )

    def _esd_prepare_payment_lines(self):
        """One line per license, each at the price of the whole quantity, however the cart got
        there (lines removed or added after an earlier split): merged, priced again by the
        pricelist, split. What ``/shop/confirm_order`` leaves; the payment checks it again."""
        self.ensure_one()
        if self.state != "draft":
            return
        self._esd_merge_cart_lines()
        self.order_line._esd_split()

    def _esd_ready_for_payment(self):
        """Whether the cart is as ``/shop/confirm_order`` leaves it: one line per license."""
        self.ensure_one()
        return all(
            line.product_uom_qty == 1
            for line in self.order_line.filtered(lambda line: line.is_esd and not line.display_type)
        )

    def _check_cart_is_ready_to_be_paid(self):
        total = self.amount_total
        self._esd_prepare_payment_lines()
        if self.currency_id.compare_amounts(total, self.amount_total):
            raise ValidationError(
                self.env._("Your cart changed since the payment page was shown: check the amount.")
            )
        if self._esd_needs_end_customer_choice():
            raise ValidationError(self.env._("Tell us whom the licenses are for before you pay."))
        customer = self.esd_end_customer_id.commercial_partner_id
        if customer and self._esd_country_refusals(customer):
            raise ValidationError(" ".join(self._esd_country_refusals(customer)))
        if self._esd_below_cost_refusals():
            raise ValidationError(" ".join(self._esd_below_cost_refusals()))
        return super()._check_cart_is_ready_to_be_paid()

    def _esd_below_cost_refusals(self):
        """Why the shop refuses this cart: one sentence per license product sold below its cost
        (a pricelist, a discount or a price typed by hand), unless an ESD manager allowed it."""
        self.ensure_one()
        return list(
            dict.fromkeys(
                self.env._(
                    "%(product)s cannot be sold below its cost: price %(price)s, cost %(cost)s.",
                    product=line.product_id.display_name,
                    price=format_amount(self.env, line.price_reduce_taxexcl, self.currency_id),
                    cost=format_amount(self.env, line.esd_cost_unit, self.currency_id),
                )
                for line in self._esd_below_cost_lines()
            )
        )

    def _esd_check_before_payment(self):
        """What must hold before money is taken for this order from its portal page: a shop
        cart as the shop's payment checks it; a quotation as a backend confirmation does."""
        self.ensure_one()
        if self.website_id:
            self._check_cart_is_ready_to_be_paid()
        else:
            self._esd_check_sellable()
            self._esd_check_parties()

    def _esd_licenses_pending(self):
        """True while some license of this order is still to be delivered (or to be created)."""
        self.ensure_one()
        if not self.has_esd_lines or self.state == "cancel":
            return False
        if self.state != "sale":
            return True
        return any(a.sync_status == "unsynchronised" for a in self.esd_asset_ids)

    def _esd_delivered_count(self):
        """How many licenses of this order were delivered (and not cancelled)."""
        self.ensure_one()
        return len(
            self.esd_asset_ids.filtered(
                lambda a: a.sync_status == "synchronized" and a.state != "cancelled"
            )
        )

    def _esd_merge_cart_lines(self):
        """The cart is editable again: a license product is one line again (split for the
        payment), priced by the pricelist at its whole quantity."""
        self.ensure_one()
        if self.state != "draft":
            return
        lines = self.order_line.filtered(lambda line: line.is_esd and not line.display_type)
        groups = defaultdict(lambda: self.env["sale.order.line"])
        for line in lines:
            key = (line.product_id, line.product_uom, line.product_no_variant_attribute_value_ids)
            groups[key] |= line
        for group in groups.values():
            if len(group) > 1:
                group[0].product_uom_qty = sum(group.mapped("product_uom_qty"))
                (group - group[0]).unlink()
        lines = lines.exists()
        lines.invalidate_recordset(["pricelist_item_id"])
        lines.with_context(force_price_recomputation=True)._compute_price_unit()
        lines.discount = 0.0
        lines._compute_discount()

    def _cart_update(self, product_id, line_id=None, add_qty=0, set_qty=0, **kwargs):
        """A change to the cart undoes the payment's split (it is priced and split again when
        the order is confirmed)."""
        values = super()._cart_update(
            product_id, line_id=line_id, add_qty=add_qty, set_qty=set_qty, **kwargs
        )
        if any(self.order_line.mapped("is_esd")):
            self._esd_merge_cart_lines()
            # The line the browser shows for this product: the one the others merged into.
            kept = self.order_line.filtered(lambda line: line.product_id.id == product_id)[:1]
            if kept and values.get("line_id") not in self.order_line.ids:
                values["line_id"] = kept.id
            if kept and "quantity" in values:
                values["quantity"] = kept.product_uom_qty
        return values

    # ------------------------------------------------------------------ invoicing
    @api.model
    def _esd_ready_to_invoice(self, orders=None):
        """The orders (among ``orders``, if given) with delivered licenses to invoice and none
        still pending."""
        Asset = self.env["esd.asset"]
        # Orders with a license still to deliver wait (_esd_invoice_delivered skips them): left
        # out by the search, not locked and read after every batch of the provisioning cron.
        domain = [
            ("sync_status", "=", "synchronized"),
            ("invoice_line_id", "=", False),
            ("state", "=", "active"),
            (
                "sale_order_id",
                "any",
                [
                    ("esd_invoice_error", "=", False),
                    ("esd_asset_ids", "not any", [("sync_status", "=", "unsynchronised")]),
                ],
            ),
        ]
        if orders is not None:
            domain.append(("sale_order_id", "in", orders.ids))
        return Asset.search(domain).sale_order_id

    @api.model
    def _esd_invoice_ready(self, orders=None, commit_each=False):
        """Invoice the orders (among ``orders``, if given) with delivered licenses to invoice
        and none still pending.

        Each order under its own savepoint, its row then its licenses locked first (the lock
        order of every writer of licenses): an order another transaction holds, or changed
        since this transaction began, is left to a moment later; one that fails is logged on
        the order, with an activity for its salesperson, and the others go on. Commits after
        each order with ``commit_each`` (the provisioning cron: a transaction holds the
        journal's next number from an invoice's posting until it ends, and every other
        invoicing of that journal waits for it), never otherwise.
        """
        for order in self._esd_ready_to_invoice(orders):
            try:
                # A conflict with another worker is expected and handled: not logged as an
                # error (the savepoint's flush runs inside the block); so is another worker
                # posting the same journal's first number at the same time (handled below).
                with (
                    esd_jobs.expected_conflicts("account_move_unique_name"),
                    self.env.cr.savepoint(),
                ):
                    if order._esd_hold_for_invoicing():
                        order._esd_invoice_delivered()
                    else:
                        order._esd_invoice_later()
            except esd_jobs.CONFLICTS:
                order._esd_invoice_later()
            except psycopg2.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != "account_move_unique_name":
                    order._esd_set_invoice_error(redact(str(exc)))
                else:  # another worker posted an invoice of the same journal at the same time
                    order._esd_invoice_later()
            except Exception as exc:  # an order that cannot be invoiced never blocks the others
                _logger.exception("order %s: its licenses could not be invoiced", order.id)
                order._esd_set_invoice_error(redact(str(exc)))
            if commit_each:
                esd_jobs.commit(self.env)

    def _esd_hold_for_invoicing(self):
        """Lock this order's row, then its licenses, without waiting: False when another
        transaction holds one of them (a provisioning batch, the email job)."""
        self.ensure_one()
        self.env.flush_all()
        cr = self.env.cr
        cr.execute("SELECT id FROM sale_order WHERE id = %s FOR UPDATE SKIP LOCKED", [self.id])
        if not cr.fetchall():
            return False
        cr.execute("SELECT count(*) FROM esd_asset WHERE sale_order_id = %s", [self.id])
        (count,) = cr.fetchone()
        cr.execute(
            "SELECT id FROM esd_asset WHERE sale_order_id = %s ORDER BY id FOR UPDATE SKIP LOCKED",
            [self.id],
        )
        if len(cr.fetchall()) != count:
            return False
        # Held: what is invoiced is read as it is now, not as an earlier transaction of this
        # cursor cached it (a job that invoices order after order, committing each).
        self.invalidate_recordset()
        self.order_line.invalidate_recordset()
        self.esd_asset_ids.invalidate_recordset()
        return True

    def _esd_invoice_later(self):
        """Another transaction holds or changed the order: invoiced in a moment rather than at
        the next run."""
        _logger.info("order %s: invoicing deferred after a concurrent update", self.id)
        self.env["esd.asset"]._esd_trigger_provisioning(
            fields.Datetime.add(fields.Datetime.now(), seconds=INVOICE_AGAIN_SECONDS)
        )

    def _esd_invoice_delivered(self):
        """One posted invoice for the licenses delivered since the last one.

        Sale's own invoicing: ESD lines invoice their delivered quantity, which their license
        gives. It waits while some license of the order is still being provisioned, so a normal
        order gets exactly one invoice; a license delivered later gets a follow-up one.
        """
        for order in self:
            if any(a.sync_status == "unsynchronised" for a in order.esd_asset_ids):
                continue
            lines = order.order_line.filtered(lambda line: line.is_esd and line.qty_to_invoice > 0)
            if not lines:
                continue
            # The licenses of every line in one query: creating the invoice lines reads each
            # line's licenses (their invoice line depends on it), one query a line otherwise.
            order.order_line.mapped("esd_asset_ids")
            moves = (
                order.sudo()
                .with_context(raise_if_nothing_to_invoice=False, esd_license_lines_only=True)
                ._create_invoices()
            )
            moves.action_post()
            order.message_post(
                body=self.env._(
                    "Invoiced %(count)s delivered licenses: %(invoices)s",
                    count=len(lines),
                    invoices=", ".join(moves.mapped("name")),
                )
            )

    def _get_invoiceable_lines(self, final=False):
        """The license job invoices its licenses only, never the order's other lines."""
        lines = super()._get_invoiceable_lines(final)
        if self.env.context.get("esd_license_lines_only"):
            lines = lines.filtered("is_esd")
        return lines

    def _esd_set_invoice_error(self, message):
        self.sudo().esd_invoice_error = message
        self.message_post(
            body=self.env._("The delivered licenses could not be invoiced: %s", message)
        )
        activity_type = self.env.ref("microsoft_esd.mail_activity_esd_invoice")
        if not self.activity_ids.filtered(lambda a: a.activity_type_id == activity_type):
            self.sudo().activity_schedule(
                "microsoft_esd.mail_activity_esd_invoice",
                note=self.env._("%s Fix the cause, then press Retry License Invoicing.", message),
                user_id=(self.user_id or self.env.ref("base.user_admin")).id,
            )

    def action_esd_retry_invoicing(self):
        """Invoice the delivered licenses again after the cause of the error was fixed.

        For users who may invoice (Invoicing / Billing) and write these orders; only the license
        lines are invoiced."""
        if not self.env.user.has_group("account.group_account_invoice"):
            raise AccessError(
                self.env._(
                    "%s may not invoice: Retry License Invoicing is for users with invoicing "
                    "rights.",
                    self.env.user.name,
                )
            )
        self.check_access("write")
        with esd_jobs.expected_conflicts():  # changed by a job meanwhile: the request starts over
            held = all(order.sudo()._esd_hold_for_invoicing() for order in self)
        if not held:
            raise UserError(
                self.env._(
                    "Odoo is working on the licenses of %s right now: try again in a minute.",
                    ", ".join(self.mapped("name")),
                )
            )
        self.sudo().esd_invoice_error = False
        self.activity_feedback(
            ["microsoft_esd.mail_activity_esd_invoice"], feedback=self.env._("Invoicing retried.")
        )
        self.sudo()._esd_invoice_delivered()
        return True

    def action_view_esd_assets(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("microsoft_esd.action_esd_asset")
        action["domain"] = [("sale_order_id", "=", self.id)]
        action["context"] = {"default_sale_order_id": self.id}
        return action
