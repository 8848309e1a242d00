"""Catalog synchronisation rules: what to create, update and discontinue, decided without a DB.

The addon hands in what it already has (CIS product id -> record id, fingerprint, status) and the
catalog CIS returned; :func:`plan` says what to write. A product whose fingerprint did not change is
not touched at all, so an unchanged re-sync writes nothing.
"""

import hashlib
import json
from dataclasses import dataclass, field

from .errors import ProtocolError
from .prices import price_changed

NEW, ACTIVE, UPDATED, DISCONTINUED = "new", "active", "updated", "discontinued"


@dataclass(frozen=True)
class Known:
    """What the addon stores of a product it synchronised before."""

    record_id: int
    fingerprint: str
    status: str  # new | active | updated | discontinued
    price: float = None  # Microsoft's price when it was last applied (None: unknown)
    currency: str = None


@dataclass(frozen=True)
class PriceChange:
    """Microsoft's price of a known product moved: from ``old_price`` ``old_currency`` to the
    item's."""

    record_id: int
    item: object  # the CatalogItem with the new price
    old_price: float
    old_currency: str


@dataclass
class Plan:
    create: list = field(default_factory=list)  # CatalogItem, to create with status "new"
    update: list = field(default_factory=list)  # (record_id, CatalogItem, new status)
    discontinue: list = field(default_factory=list)  # (record_id, CatalogItem or None if missing)
    unchanged: int = 0
    skipped: int = 0  # discontinued in CIS and never sold here: nothing to create
    price_changes: list = field(default_factory=list)  # PriceChange, among the updates

    @property
    def changes(self):
        return len(self.create) + len(self.update) + len(self.discontinue)


def fingerprint(item):
    """A digest of every CIS field the addon shows or depends on."""
    payload = [
        item.title,
        item.sku,
        item.description,
        item.platform,
        item.publisher,
        round(item.price, 4),
        item.currency,
        item.status,
    ]
    return hashlib.sha1(json.dumps(payload).encode()).hexdigest()


def plan(known, items):
    """Compare ``known`` ({product id: Known}) with the CIS ``items``; return a :class:`Plan`."""
    result = Plan()
    seen = set()
    for item in items:
        if item.product_id in seen:
            raise ProtocolError(f"CIS listed product {item.product_id} twice in its catalog")
        seen.add(item.product_id)
        have = known.get(item.product_id)
        discontinued = item.status == DISCONTINUED
        if have is None:
            if discontinued:
                result.skipped += 1
            else:
                result.create.append(item)
            continue
        if discontinued:
            if have.status == DISCONTINUED:
                result.unchanged += 1
            else:
                result.discontinue.append((have.record_id, item))
            continue
        if fingerprint(item) == have.fingerprint and have.status != DISCONTINUED:
            result.unchanged += 1
            continue
        # Changed, or listed again after being discontinued: an operator reviews it first.
        result.update.append((have.record_id, item, NEW if have.status == NEW else UPDATED))
        if price_changed(have.price, have.currency, item.price, item.currency):
            result.price_changes.append(
                PriceChange(have.record_id, item, have.price, have.currency)
            )
    for product_id, have in known.items():
        if product_id not in seen and have.status != DISCONTINUED:
            result.discontinue.append((have.record_id, None))
    return result


def odoo_language_to_cis(lang):
    """Odoo's ``de_DE`` is CIS's ``de-DE``; a script variant (``sr@latin``) drops the script."""
    return (lang or "en_US").split("@")[0].replace("_", "-")
