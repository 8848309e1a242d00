"""Reconciliation findings."""

from microsoft_esd import reconciliation as rc
from microsoft_esd.contract import License


def local(key, sync="synchronized", status="activated", invoiced=True, settled=True, ret="none"):
    return rc.Local(key, f"L{key}", status, sync, invoiced, settled, ret)


def test_each_kind_of_difference():
    remote = {
        "L1": License("L1", "activated"),
        "L2": License("L2", "redeemed"),
        "L3": License("L3", "activated"),
        "L6": License("L6", "activated"),
        "L9": License("L9", "return_accepted", return_status="successful"),
        "L10": License("L10", "return_accepted", return_status="successful"),
        "L11": License("L11", "return_accepted", return_status="successful"),
        "L12": License("L12", "return_accepted", return_status="successful"),
    }
    findings = rc.compare(
        [
            local(1),  # in agreement: nothing
            local(2),  # redeemed at Microsoft: applicable
            local(3, status="redeemed"),  # CIS says activated again: not an allowed transition
            local(4),  # unknown to CIS
            local(5, sync="failed", invoiced=False),
            local(6, invoiced=False),  # delivered, order settled, never invoiced
            local(7, sync="unsynchronised", invoiced=True),
            local(8, sync="unsynchronised", invoiced=False),  # simply pending: nothing
            local(9),  # returned at Microsoft, Odoo never asked: a credit to decide
            local(10, status="return_accepted", ret="external"),  # known, not credited yet
            local(11, status="return_accepted", ret="done"),  # returned and credited: nothing
            local(12, ret="requested"),  # our return under way: the returns job finishes it
        ],
        remote,
    )
    got = {(f.key, f.kind, f.applicable) for f in findings}
    assert got == {
        (2, rc.STATUS_DIFFERS, True),
        (3, rc.STATUS_DIFFERS, False),
        (4, rc.UNKNOWN_TO_CIS, False),
        (5, rc.FAILED_LOCALLY, False),
        (6, rc.DELIVERED_NOT_INVOICED, False),
        (7, rc.INVOICED_NOT_DELIVERED, False),
        (9, rc.RETURNED_NOT_CREDITED, True),
        (10, rc.RETURNED_NOT_CREDITED, True),
    }


def test_delivered_but_order_still_provisioning_is_not_a_finding():
    assert (
        rc.compare([local(1, invoiced=False, settled=False)], {"L1": License("L1", "activated")})
        == []
    )
