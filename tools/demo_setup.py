"""Demo data of ``make demo``, run inside ``odoo shell`` (which provides ``env``).

Points the demo instance at the running simulator (ESD_DEMO_CONFIG), tests it, gives it a sales
price rule on cost (cost + 25 %, ends in .99) and two reseller tiers (Gold: cost + 8 %, Silver:
cost + 12 %), syncs the catalog, then, once per database: activates and publishes the catalog,
sells licenses to demo customers (one through a reseller, one to the portal user) and leaves a
quotation of 3 licenses to confirm; six months of sales; and last, Microsoft raises the price of
Office Home 2024 (the simulator's catalog changes, a second sync records it and the resellers who
bought it get their digest). The shop's demo payment provider is enabled in test mode.
"""

import os

from odoo import Command

instance = env["esd.instance"]._esd_setup_from_simulator(os.environ["ESD_DEMO_CONFIG"])
instance.action_test_connection()


def tier(name, markup, sequence):
    """A reseller tier of the shop: a pricelist whose rule is Odoo's formula on cost (+ markup %,
    ending in .99), for the shop's logged-in resellers who have it (not selectable)."""
    return env["product.pricelist"].create(
        {
            "name": name,
            "sequence": sequence,
            "website_id": env["website"].search([], limit=1).id,
            "selectable": False,
            "item_ids": [
                Command.create(
                    {
                        "applied_on": "3_global",
                        "compute_price": "formula",
                        "base": "standard_price",
                        "price_discount": -markup,
                        "price_markup": markup,
                        "price_round": 1.0,
                        "price_surcharge": -0.01,
                    }
                )
            ],
        }
    )


if not env.ref("microsoft_esd.demo_pricing_done", False):
    # Pricelists on; the shop's and every customer's default sells at the Sales Price (first by
    # sequence: Odoo gives it to whoever has no pricelist of their own); the instance's rule; two
    # tiers.
    env["res.config.settings"].create({"group_product_pricelist": True}).execute()
    env["product.pricelist"].create(
        {
            "name": "Public prices",
            "sequence": 1,
            "website_id": env["website"].search([], limit=1).id,
            "selectable": False,
        }
    )
    instance.write(
        {"esd_price_from_cost": True, "esd_price_markup": 25.0, "esd_price_rounding": "0.99"}
    )
    for xmlid, name, markup, sequence in (
        ("demo_pricelist_gold", "Gold resellers", 8.0, 20),
        ("demo_pricelist_silver", "Silver resellers", 12.0, 21),
    ):
        env["ir.model.data"].create(
            {
                "module": "microsoft_esd",
                "name": xmlid,
                "model": "product.pricelist",
                "res_id": tier(name, markup, sequence).id,
                "noupdate": True,
            }
        )
    # A demo database made before the tiers: its resellers get theirs.
    for name, xmlid in (("Fabrikam Reseller", "gold"), ("Proseware Reseller", "silver")):
        env["res.partner"].search([("name", "=", name), ("is_company", "=", True)]).write(
            {"property_product_pricelist": env.ref(f"microsoft_esd.demo_pricelist_{xmlid}").id}
        )
    env["ir.model.data"].create(
        {
            "module": "microsoft_esd",
            "name": "demo_pricing_done",
            "model": "esd.instance",
            "res_id": instance.id,
            "noupdate": True,
        }
    )
    env.cr.commit()
gold = env.ref("microsoft_esd.demo_pricelist_gold")
silver = env.ref("microsoft_esd.demo_pricelist_silver")
if instance.state == "connected" and not instance.catalog_last_sync:
    # A new demo database starts from the simulator's seeded catalog (an earlier demo database
    # may have left Microsoft's price change in it).
    from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
    from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient

    AdminClient(InstanceConfig.from_file(os.environ["ESD_DEMO_CONFIG"])).reset_catalog()
    instance._sync_catalog()
if instance.state == "connected" and not env.ref("microsoft_esd.demo_orders_done", False):
    products = env["product.template"].search(
        [("esd_instance_id", "=", instance.id), ("esd_catalog_status", "in", ("new", "updated"))]
    )
    # Priced by the instance's rule at the sync (cost + 25 %, ends in .99).
    products.action_esd_activate_for_sale()
    products.action_esd_publish_on_website()
    office = products.filtered(lambda p: p.esd_product_id == "EP2-06606:en-US")
    windows = products.filtered(lambda p: p.esd_product_id == "FQC-10572:en-US")
    us = env.ref("base.us")
    # The shop's own category, first in its list.
    category = env["product.public.category"].create({"name": "Microsoft Licenses", "sequence": 0})
    products.write({"public_categ_ids": [Command.link(category.id)]})
    Partner = env["res.partner"]

    def address(street):
        """A full address: the shop asks for one before payment (the contacts get their
        company's)."""
        return {
            "street": street,
            "city": "Albany",
            "zip": "12207",
            "state_id": env.ref("base.state_us_27").id,
            "country_id": us.id,
            "phone": "+1 518 555 0100",
        }

    contoso = Partner.create(
        {
            "name": "Contoso Ltd",
            "is_company": True,
            **address("1 Contoso Way"),
            "email": "it@contoso.example",
            "esd_role": "user",
        }
    )
    fabrikam = Partner.create(
        {
            "name": "Fabrikam Reseller",
            "is_company": True,
            **address("2 Fabrikam Plaza"),
            "email": "sales@fabrikam.example",
            "esd_role": "reseller",
            "property_product_pricelist": gold.id,
        }
    )
    northwind = Partner.create(
        {
            "name": "Northwind Traders",
            "is_company": True,
            **address("3 Northwind Road"),
            "email": "admin@northwind.example",
            "esd_role": "user",
        }
    )
    portal = env.ref("base.partner_demo_portal").commercial_partner_id
    portal.write({"country_id": portal.country_id.id or us.id, "esd_role": "user"})
    salesperson = env.ref("base.user_demo")

    def order(partner, lines, end_customer=None):
        return env["sale.order"].create(
            {
                "partner_id": partner.id,
                "user_id": salesperson.id,
                "esd_end_customer_id": end_customer and end_customer.id,
                "order_line": [
                    Command.create({"product_id": p.product_variant_id.id, "product_uom_qty": q})
                    for p, q in lines
                ],
            }
        )

    confirmed = (
        order(contoso, [(office, 3)])
        | order(fabrikam, [(windows, 2)], northwind)
        | order(portal, [(office, 1), (windows, 1)])
    )
    confirmed.action_confirm()
    env.cr.commit()
    env["esd.asset"]._esd_provision_pending()
    env.cr.commit()
    env["esd.asset"]._esd_send_pending_welcome()
    env.cr.commit()
    order(contoso, [(office, 3)])  # a quotation to confirm in the demo
    # Discrepancies for the reconciliation wizard. Microsoft accepted the return of a Northwind
    # license (the hourly status refresh applies it: an allowed transition), and one license of
    # a Contoso order failed at Microsoft (it stays a finding until someone retries it).
    from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
    from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient

    admin = AdminClient(InstanceConfig.from_file(os.environ["ESD_DEMO_CONFIG"]))
    seeded = env["esd.asset"].search([("customer_id", "=", northwind.id)], limit=1)
    admin.force_status(seeded.esd_license_id, "ReturnAccepted", "Successful")
    failing = order(contoso, [(windows, 1)])
    failing.action_confirm()
    env.cr.commit()
    admin.faults(fail=1, fail_status=422, paths="orders")
    env["esd.asset"]._esd_provision_pending()
    env.cr.commit()
    admin.clear_faults()
    # A portal login for the reseller: it sees the licenses it bought for its customers.
    contact = Partner.create(
        {
            "name": "Rob Fabrikam",
            "parent_id": fabrikam.id,
            "email": "rob@fabrikam.example",
            "phone": "+1 518 555 0101",
        }
    )
    env["res.users"].with_context(no_reset_password=True).create(
        {
            "name": contact.name,
            "login": "reseller",
            "password": "reseller",
            "partner_id": contact.id,
            "groups_id": [Command.set([env.ref("base.group_portal").id])],
        }
    )
    # Both portal logins hold their company's keys, as an ESD manager decides (Allow License
    # Keys on the contact): a login given under a customer sees no key until then.
    (contact | env.ref("base.partner_demo_portal")).action_esd_allow_keys()
    second = order(fabrikam, [(office, 1)], contoso)
    second.action_confirm()
    env.cr.commit()
    env["esd.asset"]._esd_provision_pending()
    env.cr.commit()
    env["esd.asset"]._esd_send_pending_welcome()
    env.cr.commit()
    env["ir.model.data"].create(
        {
            "module": "microsoft_esd",
            "name": "demo_orders_done",
            "model": "esd.instance",
            "res_id": instance.id,
            "noupdate": True,
        }
    )
if instance.state == "connected" and not env.ref("microsoft_esd.demo_history_done", False):
    # Six months of sales for Reporting and the Overview: direct customers and two resellers,
    # several products, a few returns, a cancellation request to decide; and a channel history
    # sold through CIS outside Odoo, for Configuration > Import Licenses from CIS.
    import datetime
    import random

    from odoo.addons.microsoft_esd.microsoft_esd.client import CisClient
    from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
    from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient

    config = InstanceConfig.from_file(os.environ["ESD_DEMO_CONFIG"])
    admin = AdminClient(config)
    rng = random.Random(23)
    us = env.ref("base.us")
    Partner, Asset = env["res.partner"], env["esd.asset"]

    def company(name, email, role="user", pricelist=None):
        partner = Partner.search([("name", "=", name), ("is_company", "=", True)], limit=1)
        if partner:
            return partner
        return Partner.create(
            {
                "name": name,
                "is_company": True,
                "street": "10 Market Street",
                "city": "Albany",
                "zip": "12207",
                "state_id": env.ref("base.state_us_27").id,
                "country_id": us.id,
                "email": email,
                "esd_role": role,
                "property_product_pricelist": pricelist and pricelist.id,
            }
        )

    direct = [
        company("Contoso Ltd", "it@contoso.example"),
        company("Adatum Corporation", "it@adatum.example"),
        company("Woodgrove Bank", "it@woodgrove.example"),
        company("Litware Inc", "it@litware.example"),
    ]
    resellers = {
        company("Fabrikam Reseller", "sales@fabrikam.example", "reseller"): [
            company("Northwind Traders", "admin@northwind.example"),
            company("Alpine Ski House", "it@alpineskihouse.example"),
        ],
        company("Proseware Reseller", "sales@proseware.example", "reseller", silver): [
            company("Coho Winery", "it@cohowinery.example"),
            company("Blue Yonder Airlines", "it@blueyonder.example"),
        ],
    }
    catalog = env["product.template"].search(
        [
            ("esd_instance_id", "=", instance.id),
            (
                "esd_product_id",
                "in",
                [
                    "EP2-06606:en-US",
                    "EP2-06615:en-US",
                    "FQC-10572:en-US",
                    "KW9-00664:en-US",
                    "D86-05998:en-US",
                    "9EM-00691:en-US",
                ],
            ),
        ]
    )
    salespeople = env.ref("base.user_demo") | env.ref("base.user_admin")
    today = datetime.date.today()
    sold = Asset
    for months_ago in range(6, -1, -1):
        for _ in range(rng.randint(3, 5)):
            if rng.random() < 0.5:
                buyer, end_customer = rng.choice(direct), None
            else:
                buyer = rng.choice(list(resellers))
                end_customer = rng.choice(resellers[buyer])
            order = env["sale.order"].create(
                {
                    "partner_id": buyer.id,
                    "user_id": rng.choice(salespeople).id,
                    "esd_end_customer_id": end_customer and end_customer.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": rng.choice(catalog).product_variant_id.id,
                                "product_uom_qty": rng.randint(1, 3),
                            }
                        )
                    ],
                }
            )
            order.action_confirm()
            env.cr.commit()
            env["esd.asset"]._esd_provision_pending()
            env.cr.commit()
            year, month = today.year, today.month - months_ago
            if month < 1:
                year, month = year - 1, month + 12
            day = rng.randint(1, today.day if months_ago == 0 else 28)
            when = datetime.date(year, month, day)
            order.write({"date_order": datetime.datetime.combine(when, datetime.time(10))})
            order.esd_asset_ids.sudo().write({"purchase_date": when})
            sold |= order.esd_asset_ids
    env["esd.asset"]._esd_send_pending_welcome()
    env.cr.commit()
    # Returns: two of this month's licenses returned and credited; one older one returned at
    # Microsoft without Odoo asking (the status refresh reports it: a return to credit).
    recent = sold.filtered(lambda a: a.purchase_date >= today - datetime.timedelta(days=20))
    for asset in recent.filtered(lambda a: a.sync_status == "synchronized")[:2]:
        asset._esd_cancel()
    env["esd.asset"]._cron_finish_returns()  # what the returns cron it triggers does
    older = sold.filtered(
        lambda a: (
            a.purchase_date < today - datetime.timedelta(days=60)
            and a.sync_status == "synchronized"
        )
    )
    if older:
        admin.force_status(older[0].esd_license_id, "ReturnAccepted", "Successful")
        older[0]._esd_update_status()
    # A customer asks to cancel a license: the ESD manager decides.
    pending = (recent - recent.filtered(lambda a: a.state != "active"))[-1:]
    if pending:
        pending._esd_request_cancellation("Ordered the wrong edition", pending.customer_id)
    env.cr.commit()
    # Sold through CIS before Odoo (as `esd order` does): one Odoo customer's account, and a
    # reseller and a customer Odoo does not know yet.
    cis = CisClient(config)
    contoso_account = direct[0].esd_account_ids[:1].account_id
    trey = cis.create_account(
        "pre-odoo-trey", "user", "Trey Research", "it@treyresearch.example", "US"
    ).account_id
    wingtip = cis.create_account(
        "pre-odoo-wingtip", "reseller", "Wingtip Reseller", "sales@wingtip.example", "US"
    ).account_id
    for customer, reseller, product in [
        (contoso_account, None, "EP2-06606:en-US"),
        (trey, wingtip, "FQC-10572:en-US"),
        (trey, wingtip, "FQC-10572:en-US"),
        (trey, wingtip, "EP2-06615:en-US"),
        (trey, None, "KW9-00664:en-US"),
    ]:
        if customer:
            cis.order_license(product, customer, reseller, "sold before Odoo")
    cis.close()
    env["ir.model.data"].create(
        {
            "module": "microsoft_esd",
            "name": "demo_history_done",
            "model": "esd.instance",
            "res_id": instance.id,
            "noupdate": True,
        }
    )
    env.cr.commit()
if instance.state == "connected" and not env.ref("microsoft_esd.demo_price_change_done", False):
    # Microsoft raises the price of Office Home 2024 (as it does in its monthly price list): the
    # next sync records the new cost and each tier's new price on the product and in the sync's
    # summary, and the resellers who bought it in the last 12 months get their digest.
    from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
    from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient

    AdminClient(InstanceConfig.from_file(os.environ["ESD_DEMO_CONFIG"])).catalog(
        "reprice", "EP2-06606:en-US", amount=159.99
    )
    instance._sync_catalog()
    env.cr.commit()
    env["esd.price.change"]._esd_announce_pending()
    env["ir.model.data"].create(
        {
            "module": "microsoft_esd",
            "name": "demo_price_change_done",
            "model": "esd.instance",
            "res_id": instance.id,
            "noupdate": True,
        }
    )
    env.cr.commit()
# The shop takes payments with Odoo's demo provider (test mode: no money moves).
demo_provider = env.ref("payment.payment_provider_demo", raise_if_not_found=False)
if demo_provider and demo_provider.state == "disabled":
    demo_provider.write({"state": "test", "is_published": True})
env.cr.commit()
# The result line that tools/devenv.py reads from odoo shell's stdout (a log line would not do).
print(  # pylint: disable=print-used
    "ESD-DEMO",
    instance.state,
    instance.product_count,
    env["esd.asset"].search_count([]),
    instance.last_error or "",
)
