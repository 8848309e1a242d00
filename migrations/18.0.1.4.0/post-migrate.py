"""18.0.1.4.0: who sees a key is decided, not inherited; no stored message holds a key.

- The license email template takes the form ESD managers may edit without running code (its
  key and link come from placeholders filled as the email leaves); ESD managers who are not
  system administrators stop being Mail Template Editors.
- Keys are seen by portal key holders only: the portal users who saw their company's keys until
  now keep seeing them (flagged key holders); internal users no longer see keys in full (they use
  Reveal key). A license bought in the shop records its portal buyer.
- Old messages and queued emails that hold a key or an activation link are cleaned: the key is
  masked in messages; queued emails get the placeholders back, so they still send the key.
"""

import logging

from markupsafe import escape

from odoo import SUPERUSER_ID, api
from odoo.tools import convert_file

from odoo.addons.microsoft_esd.microsoft_esd import licenses

# The placeholders the license email held from 18.0.1.4.0 to 18.0.1.6.0 (random markers since).
MAIL_KEY_PLACEHOLDER = "ESD-LICENSE-KEY-PLACEHOLDER"
MAIL_LINK_PLACEHOLDER = "https://esd-activation-link.invalid/"

_logger = logging.getLogger(__name__)


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    # The template is noupdate: load its new form once.
    convert_file(env, "microsoft_esd", "data/mail_template.xml", {}, mode="init", noupdate=True)

    editor = env.ref("mail.group_mail_template_editor")
    managers = env.ref("microsoft_esd.group_esd_manager").users.filtered(
        lambda u: not u.has_group("base.group_system")
    )
    if managers & editor.users:
        editor.write({"users": [(3, user.id) for user in managers & editor.users]})
        _logger.info("ESD managers no longer template editors: %s", managers.mapped("login"))

    cr.execute(
        """
        UPDATE esd_asset a
           SET ordered_by_user_id = u.id
          FROM sale_order o, res_users u
         WHERE a.sale_order_id = o.id AND o.website_id IS NOT NULL
           AND u.partner_id = o.partner_id AND u.share AND u.active
        """
    )
    # From 18.0.1.7.0 on the flag is gone (grants replaced it): kept as a column for the 18.0.1.7.0
    # migration, which makes grants of it.
    cr.execute("ALTER TABLE res_users ADD COLUMN IF NOT EXISTS esd_key_holder boolean")
    cr.execute(
        """
        UPDATE res_users u
           SET esd_key_holder = true
          FROM res_partner p
         WHERE u.partner_id = p.id AND u.share AND u.active
           AND p.commercial_partner_id IN (
               SELECT customer_id FROM esd_asset UNION SELECT billing_partner_id FROM esd_asset
           )
        """
    )
    _logger.info("%s portal users keep seeing their company's license keys", cr.rowcount)

    assets = env["esd.asset"].with_context(active_test=False).search([("token_tail", "!=", False)])
    cleaned = 0
    for start in range(0, len(assets), 500):
        batch = assets[start : start + 500]
        for asset_id, (token, link) in batch._esd_secrets(strict=False).items():
            masked = licenses.mask(token[-5:]) if token else ""
            for secret, shown, placeholder in (
                (token, masked, MAIL_KEY_PLACEHOLDER),
                (link, "", MAIL_LINK_PLACEHOLDER),
                (link and str(escape(link)), "", str(escape(MAIL_LINK_PLACEHOLDER))),
            ):
                if not secret:
                    continue
                cr.execute(
                    """
                    UPDATE mail_message SET body = replace(body, %s, %s)
                     WHERE body LIKE %s
                       AND (model = 'esd.asset' AND res_id = %s
                            OR id IN (SELECT mail_message_id FROM mail_mail
                                       WHERE esd_asset_id = %s))
                    """,
                    [secret, shown, f"%{secret}%", asset_id, asset_id],
                )
                cleaned += cr.rowcount
                cr.execute(
                    "UPDATE mail_mail SET body_html = replace(body_html, %s, %s) "
                    "WHERE esd_asset_id = %s AND body_html LIKE %s",
                    [secret, placeholder, asset_id, f"%{secret}%"],
                )
                cleaned += cr.rowcount
    _logger.info("license keys removed from %s stored messages and queued emails", cleaned)
