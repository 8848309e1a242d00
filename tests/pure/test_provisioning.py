"""Provisioning rules, and bounded-parallel ordering against the simulator."""

import pytest
from conftest import PRODUCT

from microsoft_esd import provisioning as prov
from microsoft_esd.errors import UnavailableError, ValidationError


def test_license_count_accepts_whole_quantities_only():
    assert prov.license_count(3) == 3
    assert prov.license_count(2.0) == 2
    for bad in (0, -1, 1.5, None):
        with pytest.raises(ValueError, match="whole quantity"):
            prov.license_count(bad)


def test_retry_schedule_and_policy():
    assert [prov.retry_delay(a) for a in (1, 2, 3, 10)] == [60, 120, 240, 3600]
    assert prov.should_retry(UnavailableError("x"), 1)
    assert not prov.should_retry(UnavailableError("x"), prov.MAX_ATTEMPTS)
    assert not prov.should_retry(ValidationError("x"), 1)


def test_order_all_keeps_the_order_and_isolates_failures(make_client, admin, customer):
    client = make_client(pool_size=8)
    jobs = [prov.Job(i, PRODUCT, customer.account_id, request_id=f"pa-{i}") for i in range(6)]
    jobs[3] = prov.Job(3, "NO-SUCH:en-US", customer.account_id, request_id="pa-3")
    outcomes = prov.order_all(client, jobs, parallelism=4)
    assert [o.key for o in outcomes] == list(range(6))
    assert outcomes[3].error is not None and outcomes[3].license is None
    tokens = {o.license.token for o in outcomes if o.order}
    assert len(tokens) == 5
    # Running the same jobs again returns the same licenses: nothing is ordered twice.
    again = prov.order_all(client, jobs, parallelism=4)
    assert {o.license.token for o in again if o.order} == tokens
