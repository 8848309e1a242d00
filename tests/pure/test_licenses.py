"""License status rules, returns and key protection."""

import datetime

import pytest

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


def test_seal_unseal_round_trip_and_wrong_key():
    stored = lic.seal(KEY, "s3cret")
    assert stored.startswith(lic.SEALED_PREFIX) and KEY not in stored
    assert lic.unseal(stored, "s3cret") == KEY
    with pytest.raises(ValueError, match="cannot be decrypted"):
        lic.unseal(stored, "other")
    with pytest.raises(ValueError, match="no esd_token_key"):
        lic.unseal(stored, None)
    assert lic.seal(KEY, None) == KEY  # no key configured: stored as is
    assert lic.unseal(KEY, "s3cret") == KEY  # keys stored before a key was configured


def test_keyed_hash_finds_a_key_whatever_its_case():
    assert lic.keyed_hash(KEY, "k") == lic.keyed_hash(KEY.lower() + " ", "k")
    assert lic.keyed_hash(KEY, "k") != lic.keyed_hash(KEY, "other")
