from odoo import api, models

from odoo.addons.base.models.res_users import INDEX_SIZE, KEY_CRYPT_CONTEXT


class ResUsersApikeys(models.Model):
    _inherit = "res.users.apikeys"

    @api.model
    def _esd_key_of(self, token):
        """(id, name) of the requesting user's API key ``token``, which Odoo's bearer
        authentication already accepted (found by its index; verified again only when two keys
        of the user share it); (None, None) if none."""
        self.env.cr.execute(
            "SELECT id, name, key FROM res_users_apikeys WHERE user_id = %s AND index = %s",
            [self.env.uid, (token or "")[:INDEX_SIZE]],
        )
        rows = self.env.cr.fetchall()
        if len(rows) > 1:
            rows = [row for row in rows if KEY_CRYPT_CONTEXT.verify(token, row[2])]
        return (rows[0][0], rows[0][1]) if rows else (None, None)
