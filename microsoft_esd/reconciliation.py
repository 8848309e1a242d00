"""Reconciliation: compare what Odoo holds with what CIS reports, and name each difference."""

from dataclasses import dataclass

from .licenses import RETURN_ACCEPTED, transition

STATUS_DIFFERS = "status_differs"
UNKNOWN_TO_CIS = "unknown_to_cis"
FAILED_LOCALLY = "failed_locally"
INVOICED_NOT_DELIVERED = "invoiced_not_delivered"
DELIVERED_NOT_INVOICED = "delivered_not_invoiced"
RETURNED_NOT_CREDITED = "returned_not_credited"


@dataclass(frozen=True)
class Local:
    key: int
    license_id: str
    token_status: str
    sync_status: str  # unsynchronised | synchronized | failed
    invoiced: bool
    order_settled: bool  # no license of its order is still being provisioned
    return_state: str = "none"  # none | requested | accepted | done | external


@dataclass(frozen=True)
class Finding:
    key: int
    kind: str
    reported_status: str = None
    applicable: bool = False  # the CIS status is an allowed transition: it can be applied


def compare(local_licenses, remote):
    """Findings for ``local_licenses`` given ``remote`` ({license id: contract.License})."""
    findings = []
    for local in local_licenses:
        reported = remote.get(local.license_id)
        if local.return_state in ("accepted", "external"):
            # Returned at Microsoft and not credited: its credit note waits (for a decision,
            # when Odoo never asked for the return).
            findings.append(Finding(local.key, RETURNED_NOT_CREDITED, RETURN_ACCEPTED, True))
            continue
        if local.return_state == "requested":
            continue  # a return under way: the returns job finishes it
        if local.sync_status == "failed":
            findings.append(Finding(local.key, FAILED_LOCALLY))
            continue
        if local.sync_status != "synchronized":
            if local.invoiced:
                findings.append(Finding(local.key, INVOICED_NOT_DELIVERED))
            continue
        if not local.invoiced and local.order_settled:
            findings.append(Finding(local.key, DELIVERED_NOT_INVOICED))
        if reported is None:
            findings.append(Finding(local.key, UNKNOWN_TO_CIS))
        elif reported.token_status == RETURN_ACCEPTED and local.token_status != RETURN_ACCEPTED:
            # Microsoft took it back although Odoo never asked: credited only on a decision.
            findings.append(Finding(local.key, RETURNED_NOT_CREDITED, RETURN_ACCEPTED, True))
        elif reported.token_status != local.token_status:
            verdict = transition(local.token_status, reported.token_status)
            findings.append(
                Finding(local.key, STATUS_DIFFERS, reported.token_status, verdict == "apply")
            )
    return findings
