from odoo import api, fields, models
from odoo.exceptions import AccessError

from .esd_asset_provisioning import WELCOME_QUEUE


class MailTemplate(models.Model):
    _inherit = "mail.template"

    esd_company_id = fields.Many2one(
        "res.company",
        "License Email of Company",
        readonly=True,
        index="btree_not_null",
        help="A license email template of this company only: its ESD managers edit it. The "
        "shared one (no company) is edited by system administrators.",
    )

    @api.model
    def _esd_company_copy(self, shared_xmlid, company):
        """``company``'s own copy of the shared ESD email template ``shared_xmlid`` (same model),
        as sudo; empty when it has none."""
        model = self.env.ref(shared_xmlid).sudo().model
        return self.sudo().search(
            [("model", "=", model), ("esd_company_id", "=", company.id)], limit=1
        )

    @api.model
    def _esd_action_edit_company_copy(self, shared_xmlid, company):
        """The form of ``company``'s own copy of ``shared_xmlid``, made from the shared one the
        first time; the caller checked who asks."""
        template = self._esd_company_copy(shared_xmlid, company)
        if not template:
            shared = self.env.ref(shared_xmlid).sudo()
            template = shared.copy(
                {"name": f"{shared.name} ({company.name})", "esd_company_id": company.id}
            )
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.template",
            "res_id": template.id,
            "view_mode": "form",
            "target": "current",
        }

    def write(self, vals):
        """Which company an ESD email template belongs to is set by Odoo's code when it makes
        the company's copy: an ESD manager may not move its copy into another company (where
        it would become that company's email)."""
        if "esd_company_id" in vals and not self.env.su:
            raise AccessError(self.env._("Only Odoo sets the company of an ESD email template."))
        return super().write(vals)

    def _generate_template(self, res_ids, render_fields, find_or_create_partners=False):
        """The license email job's rendering: the key block is appended by code after the
        template's body, with markers only that job knows (the template never places a key)."""
        results = super()._generate_template(
            res_ids, render_fields, find_or_create_partners=find_or_create_partners
        )
        queue = WELCOME_QUEUE.get()
        if queue and self.model == "esd.asset" and "body_html" in render_fields:
            for res_id, values in results.items():
                planned = queue.get(res_id)
                if planned:
                    values["body_html"] = (values.get("body_html") or "") + planned["key_block"]
        return results

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=None):
        """A translation of a license template's body is sanitized when saved, as the body is
        in the language it is written in: Odoo stores other languages' translations as given,
        so a script an ESD manager put in the French body reached French customers' emails."""
        field = self._fields[field_name]
        # mail.template's body is translated whole: {lang: the body in that language}.
        esd_models = ("esd.asset", "esd.price.digest")
        if self.model in esd_models and field.type == "html" and field.translate is True:
            translations = {
                lang: field.convert_to_cache(value, self) if value else value
                for lang, value in translations.items()
            }
        return super()._update_field_translations(
            field_name, translations, digest=digest, source_lang=source_lang
        )
