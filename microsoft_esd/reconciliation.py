"""Reconciliation: compare what Odoo holds with what CIS reports, and name each difference."""

from dataclasses import dataclass

from .licenses import transition

STATUS_DIFFERS = "status_differs"
UNKNOWN_TO_CIS = "unknown_to_cis"
FAILED_LOCALLY = "failed_locally"
INVOICED_NOT_DELIVERED = "invoiced_not_delivered"
DELIVERED_NOT_INVOICED = "delivered_not_invoiced"


@dataclass(frozen=True)
class Local:
    key: int
    license_id: str
    token_status: str
    sync_status: str  # unsynchronised | synchronized | failed
    invoiced: bool
    order_settled: bool  # no license of its order is still being provisioned


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
        if local.sync_status == "failed":
            findings.append(Finding(local.key, FAILED_LOCALLY))
            continue
        if local.sync_status != "synchronized":
            if local.invoiced:
                findings.append(Finding(local.key, INVOICED_NOT_DELIVERED))
            continue
        if not local.invoiced and local.order_settled:
            findings.append(Finding(local.key, DELIVERED_NOT_INVOICED))
        reported = remote.get(local.license_id)
        if reported is None:
            findings.append(Finding(local.key, UNKNOWN_TO_CIS))
        elif reported.token_status != local.token_status:
            verdict = transition(local.token_status, reported.token_status)
            findings.append(
                Finding(local.key, STATUS_DIFFERS, reported.token_status, verdict == "apply")
            )
    return findings
