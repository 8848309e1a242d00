"""License status rules, returns and the masked form of a key."""

import datetime

from microsoft_esd import licenses as lic

TODAY = datetime.date(2026, 11, 21)
KEY = "Q4HHJ-D32FY-FDRCR-C6GKW-V6M33"


def test_only_the_two_transitions_are_applied():
    assert lic.transition("activated", "redeemed") == "apply"
    assert lic.transition("activated", "return_accepted") == "apply"
    assert lic.transition("redeemed", "redeemed") == "same"
    for current, reported in [
        ("redeemed", "activated"),
        ("redeemed", "return_accepted"),
        ("return_accepted", "activated"),
        ("return_accepted", "redeemed"),
    ]:
        assert lic.transition(current, reported) == "refuse"


def test_return_refusals_say_why():
    ok = dict(
        returnable=True,
        purchase_date=TODAY - datetime.timedelta(days=30),
        window_days=30,
        today=TODAY,
    )
    assert lic.return_refusal("activated", **ok) is None
    assert "redeemed" in lic.return_refusal("redeemed", **ok)
    assert "already returned" in lic.return_refusal("return_accepted", **ok)
    assert "not returnable" in lic.return_refusal("activated", **{**ok, "returnable": False})
    late = {**ok, "purchase_date": TODAY - datetime.timedelta(days=31)}
    assert lic.return_refusal("activated", **late) == (
        "the return window of 30 days closed on 2026-11-20"
    )


def test_mask_keeps_the_last_five():
    assert lic.mask(KEY) == "*****-*****-*****-*****-V6M33"
    assert lic.mask(None) is None
