from odoo import models


class MailTemplate(models.Model):
    _inherit = "mail.template"

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
