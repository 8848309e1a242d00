import contextlib
import contextvars

from odoo import fields, models

# Inside sanitize_once(): {(sanitize options, HTML): sanitized HTML}, for this thread only.
_SANITIZED = contextvars.ContextVar("esd_sanitized_html", default=None)


@contextlib.contextmanager
def sanitize_once():
    """Inside this block, an HTML value given to mail.message's body is sanitized once.

    Odoo's ORM sanitizes the value of an HTML field each time it converts it: creating a
    message sanitizes its body for the database and again, the same value, for the cache, and
    creating a mail.mail (which inherits its message) sanitizes it a third time for the
    mail.mail's cache. The sanitizer is a pure function of the HTML and the field's options:
    here the second and third conversions reuse the first one's result, so every stored and
    cached value is exactly what Odoo's sanitizer returns, at a third of the cost. The memo
    lives only for the block (one batch of license emails).
    """
    token = _SANITIZED.set({})
    try:
        yield
    finally:
        _SANITIZED.reset(token)


class SanitizeOnceHtml(fields.Html):
    """fields.Html whose sanitizing is memoized inside sanitize_once() (see there)."""

    def _convert(self, value, record, validate):
        memo = _SANITIZED.get()
        if memo is None or not value or not validate or not self.sanitize:
            return super()._convert(value, record, validate)
        if self.sanitize_overridable:  # depends on the user and the stored value
            return super()._convert(value, record, validate)
        key = (
            self.sanitize_tags,
            self.sanitize_attributes,
            self.sanitize_style,
            self.sanitize_form,
            self.sanitize_conditional_comments,
            self.sanitize_output_method,
            self.strip_style,
            self.strip_classes,
            str(value),
        )
        if key not in memo:
            memo[key] = super()._convert(value, record, validate)
        return memo[key]


class MailMessage(models.Model):
    _inherit = "mail.message"

    # Same field, same options (Odoo's); only its sanitizing is memoized inside sanitize_once().
    body = SanitizeOnceHtml()
