from odoo import models


class BasePartnerMergeAutomaticWizard(models.TransientModel):
    _inherit = "base.partner.merge.automatic.wizard"

    def _merge(self, partner_ids, dst_partner=None, extra_checks=True):
        """Merging rewrites the logins' contacts in SQL: every grant of the merged contacts'
        logins ends first (the merged contact may be anybody's)."""
        partners = self.env["res.partner"].browse(partner_ids)
        if dst_partner:
            partners |= dst_partner
        self.env["esd.grant"]._esd_end_for_partners(
            partners.exists(), self.env._("the contact was merged with another one")
        )
        return super()._merge(partner_ids, dst_partner=dst_partner, extra_checks=extra_checks)
