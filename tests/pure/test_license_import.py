"""Which licenses an import takes over, and why it skips the others."""

from microsoft_esd import license_import as li
from microsoft_esd.contract import License

OFFICE = "EP2-06606:en-US"


def sold(license_id, product=OFFICE, customer="ACC-C", reseller=None, status="activated", **kw):
    return License(
        license_id,
        status,
        product_id=product,
        customer_account_id=customer,
        reseller_account_id=reseller,
        **kw,
    )


def test_each_license_is_imported_or_skipped_with_its_reason():
    remote = [
        sold("L1"),
        sold("L2", reseller="ACC-R", status="redeemed"),
        sold("L3"),  # Odoo has it
        sold("L4", status="return_accepted", return_status="successful"),
        sold("L5", product="UNKNOWN:en-US"),
        sold("L6", customer=None),
        sold("L1"),  # listed twice (a page boundary moved): decided once
    ]
    plan = li.plan(remote, known_license_ids={"L3"}, product_ids={OFFICE})
    assert [lic.license_id for lic in plan.to_import] == ["L1", "L2"]
    assert {d.license.license_id: d.action for d in plan.decisions} == {
        "L1": li.IMPORT,
        "L2": li.IMPORT,
        "L3": li.KNOWN,
        "L4": li.RETURNED,
        "L5": li.NO_PRODUCT,
        "L6": li.NO_CUSTOMER,
    }
    assert plan.counts() == {
        li.IMPORT: 2,
        li.KNOWN: 1,
        li.RETURNED: 1,
        li.NO_PRODUCT: 1,
        li.NO_CUSTOMER: 1,
        li.ORDERED_BY_ODOO: 0,
    }
    assert [lic.license_id for lic in plan.skipped(li.NO_PRODUCT)] == ["L5"]
    assert len(plan.skipped()) == 4


def test_a_license_odoo_ordered_whose_answer_was_lost_is_left_to_its_retry():
    """Its externalReference is an Odoo license's: importing it would make a second, unbilled
    record and make the license's own retry fail (issue 29)."""
    remote = [sold("L1", external_reference="S00042/ESD/0007"), sold("L2")]
    plan = li.plan(
        remote, known_license_ids=set(), product_ids={OFFICE}, odoo_references={"S00042/ESD/0007"}
    )
    assert [lic.license_id for lic in plan.to_import] == ["L2"]
    assert [lic.license_id for lic in plan.skipped(li.ORDERED_BY_ODOO)] == ["L1"]


def test_the_accounts_to_match_are_those_of_the_licenses_to_import_each_once():
    remote = [
        sold("L1", customer="C1"),
        sold("L2", customer="C2", reseller="R1"),
        sold("L3", customer="C1", reseller="R1"),
        sold("L4", customer="C9"),  # known: its account is not looked up
    ]
    plan = li.plan(remote, known_license_ids={"L4"}, product_ids={OFFICE})
    assert plan.account_ids() == ["C1", "C2", "R1"]


def test_a_second_run_imports_nothing():
    remote = [sold("L1"), sold("L2", reseller="R1")]
    first = li.plan(remote, set(), {OFFICE})
    imported = {lic.license_id for lic in first.to_import}
    again = li.plan(remote, imported, {OFFICE})
    assert again.to_import == []
    assert again.counts()[li.KNOWN] == 2
    assert again.account_ids() == []
