"""18.0.1.7.0: every license and license order has its share token, made with it; a page that
shows one never writes it (a provisioning batch may hold it through its CIS calls)."""

import uuid


def migrate(cr, version):
    if not version:
        return
    cr.execute("SELECT id FROM esd_asset WHERE access_token IS NULL")
    assets = [(str(uuid.uuid4()), asset_id) for (asset_id,) in cr.fetchall()]
    cr.executemany("UPDATE esd_asset SET access_token = %s WHERE id = %s", assets)
    cr.execute(
        "SELECT id FROM sale_order WHERE access_token IS NULL AND id IN "
        "(SELECT sale_order_id FROM esd_asset WHERE sale_order_id IS NOT NULL)"
    )
    orders = [(str(uuid.uuid4()), order_id) for (order_id,) in cr.fetchall()]
    cr.executemany("UPDATE sale_order SET access_token = %s WHERE id = %s", orders)
