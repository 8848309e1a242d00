"""18.0.1.1.0: license keys and activation links move to fields no user can read.

The old columns are renamed before Odoo updates the model, so that neither the removed field
``token_stored`` (whose column Odoo would drop) nor ``activation_link`` (now computed per user)
loses its values. Values stored in clear stay readable: the vault opens them as they are.
"""

from odoo.tools import sql


def migrate(cr, version):
    for old, new in (
        ("token_stored", "token_sealed"),
        ("activation_link", "activation_link_sealed"),
    ):
        if sql.column_exists(cr, "esd_asset", old) and not sql.column_exists(cr, "esd_asset", new):
            sql.rename_column(cr, "esd_asset", old, new)
