from odoo import fields, models


class MailMail(models.Model):
    _inherit = "mail.mail"

    esd_asset_id = fields.Many2one(
        "esd.asset",
        "Microsoft ESD License",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The license whose key this email carries (queued emails are deleted once sent).",
    )
