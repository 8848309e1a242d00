"""Fixtures of the pure tests: a live HTTPS simulator and clients of it."""

import pytest

from microsoft_esd.client import CisClient
from microsoft_esd.config import InstanceConfig
from microsoft_esd.simulator import AdminClient, Simulator


@pytest.fixture(scope="session")
def simulator(tmp_path_factory):
    sim = Simulator(tmp_path_factory.mktemp("sim"), extra_products=250).start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def sim_config(simulator):
    return InstanceConfig.from_file(simulator.config_path)


@pytest.fixture
def admin(sim_config):
    admin = AdminClient(sim_config)
    admin.clear_faults()
    yield admin
    admin.clear_faults()


@pytest.fixture
def make_client(sim_config, admin):
    clients = []

    def make(config=None, **kwargs):
        options = {"read_timeout": 2.0, "deadline": 20.0, "backoff_base": 0.02, **kwargs}
        client = CisClient(config or sim_config, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def customer(client):
    return client.create_account("cust-1", "user", "Contoso Ltd", "it@contoso.example", "US")


@pytest.fixture
def reseller(client):
    return client.create_account(
        "res-1", "reseller", "Fabrikam Reseller", "sales@fabrikam.example", "US"
    )


PRODUCT = "EP2-06606:en-US"  # Office Home 2024, Active in the seeded catalog
DISCONTINUED = "79G-05410:en-US"  # Office Home & Student 2021, Discontinued
