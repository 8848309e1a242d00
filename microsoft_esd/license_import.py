"""Taking over a channel's licenses sold outside Odoo: which to import, which to skip and why.

The Odoo wizard (``wizards/esd_license_import.py``) reads every license CIS knows for the channel,
asks :func:`plan` what to do with each, and creates the licenses to import. Nothing here calls
CIS or knows Odoo: the decisions are tested without either.
"""

from dataclasses import dataclass, field

from .licenses import RETURN_ACCEPTED

IMPORT = "import"
# Why a license is not imported (the keys of the summary's skipped list).
KNOWN = "known"  # Odoo has it already (sold through Odoo, or imported before)
RETURNED = "returned"  # returned to Microsoft before the takeover: nothing left to manage
NO_PRODUCT = "no_product"  # its product is not in the instance's catalog in Odoo
NO_CUSTOMER = "no_customer"  # CIS does not say who it was sold to
# Odoo ordered it (its externalReference is an Odoo license's), its answer was lost: the
# license's own retry records it, with its sale and invoice; an import would make it a second,
# unbilled record and make that retry fail.
ORDERED_BY_ODOO = "ordered_by_odoo"

SKIP_REASONS = (KNOWN, RETURNED, NO_PRODUCT, NO_CUSTOMER, ORDERED_BY_ODOO)


@dataclass(frozen=True)
class Decision:
    license: object  # contract.License
    action: str  # IMPORT or one of SKIP_REASONS


@dataclass
class Plan:
    decisions: list = field(default_factory=list)

    @property
    def to_import(self):
        return [d.license for d in self.decisions if d.action == IMPORT]

    def skipped(self, reason=None):
        return [
            d.license
            for d in self.decisions
            if d.action != IMPORT and (reason is None or d.action == reason)
        ]

    def account_ids(self):
        """The CIS accounts the licenses to import are sold to or billed to, each once."""
        ids = []
        for lic in self.to_import:
            for account_id in (lic.customer_account_id, lic.reseller_account_id):
                if account_id and account_id not in ids:
                    ids.append(account_id)
        return ids

    def counts(self):
        counts = dict.fromkeys((IMPORT, *SKIP_REASONS), 0)
        for decision in self.decisions:
            counts[decision.action] += 1
        return counts


def decide(lic, known_license_ids, product_ids, odoo_references=frozenset()):
    """What to do with one license CIS reports."""
    if lic.license_id in known_license_ids:
        return KNOWN
    if lic.external_reference and lic.external_reference in odoo_references:
        return ORDERED_BY_ODOO
    if lic.token_status == RETURN_ACCEPTED or lic.return_status == "successful":
        return RETURNED
    if not lic.product_id or lic.product_id not in product_ids:
        return NO_PRODUCT
    if not lic.customer_account_id:
        return NO_CUSTOMER
    return IMPORT


def plan(remote, known_license_ids, product_ids, odoo_references=()):
    """The plan for ``remote`` (contract.License, as CIS lists them).

    ``known_license_ids``: the CIS license ids Odoo holds already; ``product_ids``: the CIS
    product ids the instance's catalog has in Odoo; ``odoo_references``: the externalReference
    of each Odoo license not recorded yet (ordered, answer pending). A license listed twice is
    decided once.
    """
    known = set(known_license_ids)
    products = set(product_ids)
    references = set(odoo_references)
    result, seen = Plan(), set()
    for lic in remote:
        if lic.license_id in seen:
            continue
        seen.add(lic.license_id)
        result.decisions.append(Decision(lic, decide(lic, known, products, references)))
    return result
