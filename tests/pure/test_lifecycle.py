"""The license state machine: states derived from stored fields, changes from allowed states."""

import pathlib

import pytest

from microsoft_esd import lifecycle

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("fields", "waiting", "expected"),
    [
        (("active", "unsynchronised", "none"), False, lifecycle.TO_ORDER),
        (("active", "unsynchronised", "none"), True, lifecycle.WAITING),
        (("active", "failed", "none"), False, lifecycle.FAILED),
        (("active", "synchronized", "none"), False, lifecycle.DELIVERED),
        (("cancelled", "failed", "none"), False, lifecycle.STOPPED),
        (("cancelled", "unsynchronised", "none"), False, lifecycle.STOPPED),
        (("active", "synchronized", "requested"), False, lifecycle.RETURN_REQUESTED),
        (("cancelled", "synchronized", "accepted"), False, lifecycle.RETURNED),
        (("cancelled", "synchronized", "done"), False, lifecycle.CREDITED),
        (("cancelled", "synchronized", "external"), False, lifecycle.RETURNED_ELSEWHERE),
    ],
)
def test_the_state_is_derived_from_the_stored_fields(fields, waiting, expected):
    assert lifecycle.derive(*fields, waiting=waiting) == expected


def test_a_key_delivered_is_never_stopped_nor_ordered_again():
    assert not lifecycle.allowed("stopped", lifecycle.DELIVERED)
    assert not lifecycle.allowed("stopped", lifecycle.WAITING)  # CIS may have it: never stopped
    assert not lifecycle.allowed("delivered", lifecycle.DELIVERED)
    assert not lifecycle.allowed("pending", lifecycle.DELIVERED)
    assert not lifecycle.allowed("failed", lifecycle.DELIVERED)


def test_a_return_is_credited_once_and_only_after_microsoft_took_the_key_back():
    assert lifecycle.allowed("return_requested", lifecycle.DELIVERED)
    assert not lifecycle.allowed("return_requested", lifecycle.RETURN_REQUESTED)
    assert not lifecycle.allowed("credited", lifecycle.RETURN_REQUESTED)
    assert not lifecycle.allowed("credited", lifecycle.CREDITED)
    assert lifecycle.allowed("credited", lifecycle.RETURNED)
    assert lifecycle.allowed("credited", lifecycle.RETURNED_ELSEWHERE)


def test_every_state_is_reachable_and_every_change_is_between_known_states():
    codes = {code for code, _label in lifecycle.STATES}
    reached = {lifecycle.TO_ORDER}
    for sources, target, _cause in lifecycle.TRANSITIONS.values():
        assert sources <= codes and target in codes
        reached.add(target)
    assert reached == codes


def test_the_picture_in_the_architecture_document_is_the_code():
    docs = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "```mermaid\n" + lifecycle.mermaid() + "```" in docs, (
        "docs/architecture.md: paste the output of `python -m microsoft_esd.lifecycle`"
    )


def test_only_settled_licenses_are_archived_or_deleted():
    """Archiving hides a license from every list and job: only once nothing is open (issue 29).
    Deleting removes the proof of a sale: only a license Microsoft cannot hold."""
    assert {state for state, _label in lifecycle.STATES if lifecycle.archivable(state)} == {
        lifecycle.STOPPED,
        lifecycle.CREDITED,
    }
    assert lifecycle.deletable(lifecycle.STOPPED, cis_may_hold=False, has_cis_license=False)
    assert not lifecycle.deletable(lifecycle.STOPPED, cis_may_hold=True, has_cis_license=False)
    assert not lifecycle.deletable(lifecycle.STOPPED, cis_may_hold=False, has_cis_license=True)
    for state, _label in lifecycle.STATES:
        if state != lifecycle.STOPPED:
            assert not lifecycle.deletable(state, cis_may_hold=False, has_cis_license=False)
