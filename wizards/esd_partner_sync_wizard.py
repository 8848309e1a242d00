from odoo import api, fields, models
from odoo.exceptions import UserError

from ..models.const import ESD_ROLES
from ..models.esd_access import check_caller
from ..models.notification import CLOSE, notification


class EsdPartnerSyncWizard(models.TransientModel):
    """Sync Options: the role and contact CIS needs, then Save & Synchronize."""

    _name = "esd.partner.sync.wizard"
    _description = "Microsoft ESD Partner Sync Options"

    partner_id = fields.Many2one("res.partner", required=True, readonly=True)
    has_parent = fields.Boolean(compute="_compute_has_parent")
    role = fields.Selection(ESD_ROLES, required=True)
    email = fields.Char("Microsoft Contact Email", required=True)
    instance_ids = fields.Many2many(
        "esd.instance",
        string="Instances",
        default=lambda self: self.env["esd.instance"].search([("state", "=", "connected")]),
    )

    @api.depends("partner_id")
    def _compute_has_parent(self):
        for wizard in self:
            wizard.has_parent = bool(wizard.partner_id.parent_id)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        partner = self.env["res.partner"].browse(values.get("partner_id"))
        if partner:
            values.setdefault("role", partner.esd_role or "user")
            values.setdefault("email", partner.esd_email or partner.email)
        return values

    def action_save(self):
        """Save the partner's ESD role and Microsoft contact email (ESD users, any partner)."""
        self.ensure_one()
        check_caller(self.partner_id, operation="read")
        self.partner_id.sudo().write({"esd_role": self.role, "esd_email": self.email})
        self.partner_id._esd_check_syncable(self.role)
        return {"type": "ir.actions.act_window_close"}

    def action_save_and_sync(self):
        # The instances as stored, not as the user's rules filter them: an instance of another
        # company is refused, not silently left out.
        check_caller(self.sudo().instance_ids.with_env(self.env), operation="read")
        self.action_save()
        if not self.instance_ids:
            raise UserError(
                self.env._("Choose at least one connected ESD instance to synchronize with.")
            )
        errors = [
            error
            for error in (
                self.partner_id.sudo()._esd_sync(instance, self.role)
                for instance in self.sudo().instance_ids
            )
            if error
        ]
        if errors:
            return notification(
                self.env._("Not synchronized"), "\n".join(errors), "danger", sticky=True
            )
        return notification(
            self.env._("Synchronized"),
            self.env._(
                "%(partner)s is known to CIS on %(instances)s.",
                partner=self.partner_id.display_name,
                instances=", ".join(self.instance_ids.mapped("name")),
            ),
            next_action=CLOSE,
        )
