"""18.0.1.7.0: key holders become grants; license emails go to the addresses recorded at the
sale, carry their key only through a grant, and their template no longer places the key."""

import json
import logging
import re

from odoo import SUPERUSER_ID, Command, api
from odoo.tools import convert_file

_logger = logging.getLogger(__name__)

# What the license email held for its key from 18.0.1.4.0 to 18.0.1.6.0.
OLD_KEY_PLACEHOLDER = "ESD-LICENSE-KEY-PLACEHOLDER"
OLD_LINK_PLACEHOLDER = "https://esd-activation-link.invalid/"
# The template's old key block, placed by its authors: the job appends it now.
OLD_KEY_BLOCK = re.compile(r"<t\s+t-out=\"object\.esd_mail_key_html\"[^>]*>.*?</t>\s*", re.S)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    _grants_from_flags(env)
    _recipients_recorded(env)
    _queued_emails_granted(env)
    _templates_place_no_key(env)
    # The record rules of license templates (per company) are noupdate: load their new form.
    convert_file(env, "microsoft_esd", "security/esd_rules.xml", {}, mode="init", noupdate=True)
    cr.execute(
        """
        UPDATE esd_asset SET cis_may_hold = true
         WHERE first_transient_error_at IS NOT NULL AND esd_license_id IS NULL
        """
    )


def _grants_from_flags(env):
    """res_users.esd_key_holder (a flag read against the company the contact sits under now)
    becomes a grant for the company the contact is under at upgrade; each shop buyer a grant for
    its order."""
    cr, Grant = env.cr, env["esd.grant"]
    cr.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'res_users' AND column_name = 'esd_key_holder'"
    )
    if cr.fetchone():
        cr.execute("SELECT id FROM res_users WHERE esd_key_holder AND active AND share")
        users = env["res.users"].browse([row[0] for row in cr.fetchall()])
        for user in users:
            Grant._esd_give(user, "keys", user.company_id)
        _logger.info("%s license key holders became grants", len(users))
    cr.execute(
        """
        SELECT DISTINCT a.ordered_by_user_id, a.sale_order_id FROM esd_asset a
          JOIN res_users u ON u.id = a.ordered_by_user_id
         WHERE a.sale_order_id IS NOT NULL AND u.active AND u.share
        """
    )
    rows = cr.fetchall()
    for user_id, order_id in rows:
        order = env["sale.order"].browse(order_id)
        order.esd_buyer_user_id = user_id
        Grant._esd_give(env["res.users"].browse(user_id), "keys", order.company_id, order=order)
    _logger.info("%s online buyers of orders became grants", len(rows))


def _recipients_recorded(env):
    """Each license records the addresses its email goes to, as they are at upgrade; its email
    state is what the queue says."""
    Asset = env["esd.asset"].with_context(active_test=False)
    assets = Asset.search([("imported", "=", False)])
    for asset in assets:
        partners, addresses = asset.instance_id._esd_license_recipients(asset.customer_id)
        asset.write({"welcome_partner_ids": [Command.set(partners.ids)], "mail_to": addresses})
    env.cr.execute(
        """
        UPDATE esd_asset a SET mail_state = CASE
               WHEN EXISTS (SELECT 1 FROM mail_mail m WHERE m.esd_asset_id = a.id
                             AND m.state = 'exception') THEN 'failed'
               WHEN EXISTS (SELECT 1 FROM mail_mail m WHERE m.esd_asset_id = a.id) THEN 'queued'
               WHEN a.sync_status = 'synchronized' AND NOT a.welcome_pending
                    AND NOT a.imported THEN 'sent'
               ELSE 'none' END
        """
    )


def _queued_emails_granted(env):
    """A license email queued by 18.0.1.6.0 holds the fixed placeholders and goes to partners:
    it now goes to the recorded addresses, with random markers and a grant (else it would leave
    without its key)."""
    mails = (
        env["mail.mail"]
        .sudo()
        .search([("esd_asset_id", "!=", False), ("state", "in", ("outgoing", "exception"))])
    )
    env.cr.execute("SELECT mail_id FROM esd_mail_grant")
    mails -= mails.browse([row[0] for row in env.cr.fetchall()])
    for mail in mails:
        asset = mail.esd_asset_id
        if not asset.mail_to:
            continue
        markers = env["esd.mail.grant"]._esd_new_markers()
        body = (mail.body_html or "").replace(OLD_KEY_PLACEHOLDER, markers[0])
        body = body.replace(OLD_LINK_PLACEHOLDER, markers[1])
        # mail.mail refuses these writes to users; the migration runs as Odoo itself.
        env.cr.execute(
            "UPDATE mail_mail SET body_html = %s, email_to = %s, email_cc = NULL WHERE id = %s",
            [body, asset.mail_to, mail.id],
        )
        env.cr.execute("DELETE FROM mail_mail_res_partner_rel WHERE mail_mail_id = %s", [mail.id])
        mail.invalidate_recordset()
        env["esd.mail.grant"]._esd_record(mail, asset, markers)
    _logger.info("%s queued license emails granted their key", len(mails))


def _templates_place_no_key(env):
    """The key block in a license template (every language) is removed: the job appends it."""
    env.cr.execute("SELECT id, body_html FROM mail_template WHERE model = 'esd.asset'")
    for template_id, body in env.cr.fetchall():
        cleaned = {lang: OLD_KEY_BLOCK.sub("", value or "") for lang, value in (body or {}).items()}
        if cleaned != body:
            env.cr.execute(
                "UPDATE mail_template SET body_html = %s::jsonb WHERE id = %s",
                [json.dumps(cleaned), template_id],
            )
