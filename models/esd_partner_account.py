import uuid

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..microsoft_esd.errors import EsdError, ValidationError
from . import esd_jobs
from .const import ACCOUNT_SYNC_STATUSES, ESD_ROLES


class EsdPartnerAccount(models.Model):
    """The CIS account of a partner on one ESD instance.

    Created at order confirmation (no CIS call there); the provisioning job synchronizes it
    before ordering the licenses that need it. Its request id, stored before CIS is called and
    reused until CIS answers, makes a retry after a lost answer the same request, never a second
    account.
    """

    _name = "esd.partner.account"
    _description = "Microsoft ESD Partner Account"
    _order = "partner_id, instance_id"

    partner_id = fields.Many2one("res.partner", required=True, ondelete="cascade", index=True)
    instance_id = fields.Many2one("esd.instance", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="instance_id.company_id", store=True, index=True)
    account_id = fields.Char("CIS Account ID", readonly=True, copy=False)
    role = fields.Selection(ESD_ROLES, readonly=True)
    sync_status = fields.Selection(
        ACCOUNT_SYNC_STATUSES,
        default="not_synced",
        required=True,
        readonly=True,
    )
    sync_error = fields.Text(readonly=True)
    synced_on = fields.Datetime(readonly=True)
    request_id = fields.Char(
        "Idempotency Key",
        readonly=True,
        copy=False,
        groups="base.group_user",
        default=lambda self: str(uuid.uuid4()),
        help="Sent as MS-RequestId until CIS answers: a retry is the same request.",
    )

    _sql_constraints = [
        (
            "partner_instance_unique",
            "UNIQUE(partner_id, instance_id)",
            "A partner has one CIS account per instance.",
        ),
    ]

    @api.model
    def _esd_ensure(self, partner, instance):
        """The account of ``partner`` on ``instance``, created (not synced) when missing.

        Two transactions may create it at once (one customer's first two orders paid
        together). PostgreSQL makes the second insert wait for the first transaction; once that
        one commits, the row is not in the second's snapshot and the insert fails with a
        serialization failure, expected and not logged: Odoo retries the request, a job starts
        its batch over, and either finds the row. A duplicate key is never raised.
        """
        account = partner.sudo()._esd_account(instance)
        if account:
            return account
        with esd_jobs.expected_conflicts():
            self.env.cr.execute(
                SQL(
                    "INSERT INTO esd_partner_account (partner_id, instance_id, company_id, "
                    "sync_status, request_id, create_uid, create_date, write_uid, write_date) "
                    "VALUES (%s, %s, %s, 'not_synced', %s, %s, %s, %s, %s) "
                    "ON CONFLICT (partner_id, instance_id) DO NOTHING RETURNING id",
                    partner.id,
                    instance.id,
                    instance.company_id.id,
                    str(uuid.uuid4()),
                    self.env.uid,
                    self.env.cr.now(),
                    self.env.uid,
                    self.env.cr.now(),
                )
            )
        row = self.env.cr.fetchone()
        partner.invalidate_recordset(["esd_account_ids"])
        # No row: this transaction sees the account (one it made itself without the ORM).
        return self.sudo().browse(row[0]) if row else partner.sudo()._esd_account(instance)

    def _esd_new_request(self):
        """Start a new synchronization (a new request id); the job or a button carries it out."""
        self.sudo().write(
            {"request_id": str(uuid.uuid4()), "sync_status": "not_synced", "sync_error": False}
        )

    def _esd_sync(self, role):
        """Create or update the account at CIS with the stored request id.

        Returns None when done, else the EsdError CIS raised (``transient`` says whether to
        retry: the account then keeps its request id). A partner that no longer meets CIS's
        rules is refused as CIS would refuse it.
        """
        self.ensure_one()
        partner = self.partner_id
        try:
            try:
                email = partner._esd_check_syncable(role)
            except UserError as exc:
                raise ValidationError(str(exc)) from None
            dbuuid = self.env["ir.config_parameter"].sudo().get_param("database.uuid", "")
            result = self.instance_id._esd_client().create_account(
                f"odoo-{dbuuid[:8]}-{partner.id}",
                role,
                partner.name,
                email,
                (partner.country_id or self.instance_id.country_id).code,
                request_id=self.request_id,
            )
        except EsdError as exc:
            if not exc.transient:
                self.sudo().write({"sync_status": "failed", "sync_error": str(exc)})
            return exc
        self.sudo().write(
            {
                "account_id": result.account_id,
                "role": role,
                "sync_status": "synchronized",
                "sync_error": False,
                "synced_on": fields.Datetime.now(),
            }
        )
        if not partner.esd_role:
            partner.sudo().esd_role = role
        return None

    def _esd_refusal(self):
        """Why the licenses that need this account cannot be ordered."""
        self.ensure_one()
        return self.env._(
            "CIS refused the account of %(partner)s on %(instance)s: %(error)s Fix it in the "
            "partner's Sync Options, then press Retry provisioning.",
            partner=self.partner_id.display_name,
            instance=self.instance_id.name,
            error=self.sync_error or "",
        )
