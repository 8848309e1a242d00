"""18.0.1.1.0: the last 5 characters of each key, which everyone may see, get their own field."""

from odoo import SUPERUSER_ID, api


def migrate(cr, version):
    env = api.Environment(cr, SUPERUSER_ID, {})
    assets = (
        env["esd.asset"].with_context(active_test=False).search([("token_sealed", "!=", False)])
    )
    secrets = assets._esd_secrets(strict=False)
    for asset in assets:
        token = (secrets.get(asset.id) or (False,))[0]
        if token:
            asset.token_tail = token[-5:]
