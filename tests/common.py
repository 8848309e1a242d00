import tempfile

from odoo import Command, fields
from odoo.tests import TransactionCase

from odoo.addons.microsoft_esd.microsoft_esd.config import InstanceConfig
from odoo.addons.microsoft_esd.microsoft_esd.simulator import AdminClient, Simulator
from odoo.addons.microsoft_esd.microsoft_esd.simulator.smtp_sink import SmtpSink


def start_simulator(cls, **options):
    """A CIS simulator for the test class cls, stopped after it; its admin client."""
    cls._sim_dir = tempfile.TemporaryDirectory(prefix="esd-sim-")
    cls.addClassCleanup(cls._sim_dir.cleanup)
    cls.simulator = Simulator(cls._sim_dir.name, **options).start()
    cls.addClassCleanup(cls.simulator.stop)
    return AdminClient(InstanceConfig.from_file(cls.simulator.config_path))


def connected_instance(env, config_path):
    """An ESD instance on the simulator of config_path, connected and its catalog synced."""
    Instance = env["esd.instance"]
    instance = Instance.create(Instance._esd_values_from_simulator(config_path))
    instance.action_test_connection()
    instance._sync_catalog()
    return instance


class EsdSimulatorCase(TransactionCase):
    """Tests against a real HTTPS CIS simulator running in this process."""

    extra_products = 0

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = start_simulator(cls, extra_products=cls.extra_products)
        cls.sim_config = cls.admin.config
        cls.instance = cls.env["esd.instance"].create(
            cls.env["esd.instance"]._esd_values_from_simulator(cls.simulator.config_path)
        )
        cls.instance.action_test_connection()

    def setUp(self):
        super().setUp()
        self.admin.clear_faults()
        self.admin.reset_catalog()
        self.addCleanup(self.admin.clear_faults)


def sell_licenses(env, product, partner, count=1, end_customer=None):
    """Confirm an order of ``count`` licenses and run what the crons run; return the licenses."""
    order = env["sale.order"].create(
        {
            "partner_id": partner.id,
            "esd_end_customer_id": end_customer and end_customer.id,
            "order_line": [
                Command.create(
                    {"product_id": product.product_variant_id.id, "product_uom_qty": count}
                )
            ],
        }
    )
    order.action_confirm()
    env["esd.asset"]._esd_provision_pending()
    env["esd.asset"]._esd_send_pending_welcome()
    return order.esd_asset_ids.sorted("id")


def secrets_of(asset):
    """(key, activation link) of a license, in clear: what only Odoo's own code reads.

    Compare them with assertTrue(a == b), never assertEqual: a failing assertEqual would print
    the key into the test output.
    """
    return asset._esd_secrets()[asset.id]


def allow_keys(env, *users):
    """Make portal users key holders of their company, as an ESD manager does on the contact."""
    for user in users:
        user.partner_id.with_user(env.ref("base.user_admin")).action_esd_allow_keys()


def outgoing_body(mail):
    """The body a license email leaves with (the key put in as it is sent): what the customer
    reads. Compare with assertTrue(key in body): a failing assertIn would print the key."""
    return mail.sudo()._prepare_outgoing_body()


OFFICE = "EP2-06606:en-US"  # Office Home 2024, Active in the simulator's seeded catalog


def office_for_sale(env, price=100.0, instance=None):
    """The synced catalog's Office Home 2024 (of ``instance``, when the database has several),
    priced and activated for sale."""
    domain = [("esd_product_id", "=", OFFICE)]
    if instance:
        domain.append(("esd_instance_id", "=", instance.id))
    office = env["product.template"].search(domain)
    office.list_price = price
    office.action_esd_activate_for_sale()
    return office


def customer_company(env, name="Contoso Ltd", **values):
    """A company that CIS accepts as an account (email and country)."""
    return env["res.partner"].create(
        {
            "name": name,
            "is_company": True,
            "email": f"it@{name.split()[0].lower()}.example",
            "country_id": env.ref("base.us").id,
            **values,
        }
    )


def cancel_license(asset, approve=False):
    """Cancel License (or Approve Cancellation), then the returns cron it triggers; returns what
    the cron wrote in the license's chatter, which says the outcome."""
    before = asset.message_ids
    (asset.action_approve_cancellation if approve else asset.action_cancel_license)()
    asset.env["esd.asset"]._cron_finish_returns()
    return " ".join(str(message.body) for message in asset.message_ids - before)


def finish_returns(env, assets):
    """What the returns cron does once the backoff of these licenses' returns has passed (a day
    in the past: SQL's now() is the test transaction's start)."""
    assets.sudo().next_attempt_at = fields.Datetime.subtract(fields.Datetime.now(), days=1)
    env["esd.asset"]._cron_finish_returns()


_SINK = []


def use_smtp_sink(env):
    """Odoo's outgoing mail pointed at the simulator's SMTP sink (started once per process):
    emails really leave under pytest-odoo, where no test mode fakes the sending."""
    if not _SINK:
        _SINK.append(SmtpSink())
    sink = _SINK[0]
    server = env["ir.mail_server"].sudo().search([("smtp_port", "=", sink.port)], limit=1)
    if not server:
        env["ir.mail_server"].sudo().create(
            {"name": "ESD test sink", "smtp_host": "127.0.0.1", "smtp_port": sink.port}
        )
    return sink


def send_license_emails(env):
    """What Odoo's mail queue then the license email job do: the queued license emails leave,
    their outcome is recorded on their licenses."""
    use_smtp_sink(env)
    env["mail.mail"].sudo().search(
        [("esd_asset_id", "!=", False), ("state", "=", "outgoing")]
    ).send()
    env["esd.asset"]._cron_send_welcome()


def paid_order(case, partner, product, count=1):
    """An order of ``count`` licenses paid with the demo provider and invoiced at payment, as
    sale.automatic_invoice does in the shop (skips the test without payment_demo)."""
    env = case.env
    if "payment_demo" not in env["ir.module.module"]._installed():
        case.skipTest("paid with payment_demo (ESD_EXTRA_MODULES)")
    env["ir.config_parameter"].set_param("sale.automatic_invoice", True)
    order = env["sale.order"].create(
        {
            "partner_id": partner.id,
            "order_line": [
                Command.create(
                    {"product_id": product.product_variant_id.id, "product_uom_qty": count}
                )
            ],
        }
    )
    transaction = demo_transaction(env, order)
    transaction._set_done()
    transaction._post_process()
    return order


def demo_transaction(env, order, suffix="paid"):
    """A payment of ``order``'s amount by the demo provider (put in test mode), still draft."""
    provider = env.ref("payment.payment_provider_demo")
    provider.state = "test"
    return env["payment.transaction"].create(
        {
            "provider_id": provider.id,
            "payment_method_id": env.ref("payment_demo.payment_method_demo").id,
            "amount": order.amount_total,
            "currency_id": order.currency_id.id,
            "partner_id": order.partner_id.id,
            "reference": f"{order.name}-{suffix}",
            "sale_order_ids": [Command.set(order.ids)],
        }
    )
