"""The CIS ESD wire contract (v1), in one place.

Microsoft does not publish the CIS ESD API; this module is our reading of it, also written down in
``docs/cis-openapi.yaml``. Every path, header, field name and status word of the wire lives here and
nowhere else, so a reseller holding Microsoft's specification adapts this one file. The rest of the
package speaks in the plain values below (snake_case fields, lower-case status keys).
"""

import datetime
import re
from dataclasses import asdict, dataclass, field

from .errors import ProtocolError

API_VERSION = "v1"

# --------------------------------------------------------------------------- headers
HEADER_CORRELATION_ID = "MS-CorrelationId"
HEADER_REQUEST_ID = "MS-RequestId"
HEADER_LANGUAGE = "Accept-Language"
HEADER_RETRY_AFTER = "Retry-After"

# --------------------------------------------------------------------------- status words
# wire word -> our key (the keys are the selection values of the Odoo models)
TOKEN_STATUS = {
    "Activated": "activated",
    "Redeemed": "redeemed",
    "ReturnAccepted": "return_accepted",
}
RETURN_STATUS = {"None": "none", "Successful": "successful"}
CATALOG_STATUS = {"Active": "active", "Discontinued": "discontinued"}
ACCOUNT_ROLE = {"Reseller": "reseller", "User": "user"}
WIRE_TOKEN_STATUS = {v: k for k, v in TOKEN_STATUS.items()}
WIRE_RETURN_STATUS = {v: k for k, v in RETURN_STATUS.items()}
WIRE_CATALOG_STATUS = {v: k for k, v in CATALOG_STATUS.items()}
WIRE_ACCOUNT_ROLE = {v: k for k, v in ACCOUNT_ROLE.items()}

# error codes CIS sends in {code, message, correlationId}
CODE_LICENSE_REDEEMED = "LicenseRedeemed"
CODE_RETURN_WINDOW_CLOSED = "ReturnWindowClosed"
CODE_ALREADY_RETURNED = "LicenseAlreadyReturned"
CODE_REQUEST_ID_REUSED = "RequestIdReused"


# --------------------------------------------------------------------------- paths
def catalog_path(channel_id):
    return f"/{API_VERSION}/channels/{channel_id}/catalog"


def accounts_path(channel_id):
    return f"/{API_VERSION}/channels/{channel_id}/accounts"


def orders_path(channel_id):
    return f"/{API_VERSION}/channels/{channel_id}/orders"


def licenses_path(channel_id):
    return f"/{API_VERSION}/channels/{channel_id}/licenses"


def account_path(channel_id, account_id):
    return f"{accounts_path(channel_id)}/{account_id}"


def license_path(channel_id, license_id):
    return f"{licenses_path(channel_id)}/{license_id}"


def return_path(channel_id, license_id):
    return f"{license_path(channel_id, license_id)}/return"


def catalog_query(country, language, continuation_token=None):
    query = {"country": country, "language": language}
    if continuation_token:
        query["continuationToken"] = continuation_token
    return query


def changes_query(modified_since, continuation_token=None):
    """The query of the license listing: changed since a date, or every license (``None``)."""
    query = {}
    if modified_since is not None:
        query["modifiedSince"] = format_datetime(modified_since)
    if continuation_token:
        query["continuationToken"] = continuation_token
    return query


# --------------------------------------------------------------------------- values
def format_datetime(value):
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat() + "Z"


_FRACTION = re.compile(r"(T\d\d:\d\d:\d\d)\.(\d+)")


def _six_fraction_digits(value):
    """The fraction of a second as six digits: Python 3.10's fromisoformat reads only 3 or 6, and
    .NET writes 7 (2024-05-01T10:00:00.1234567Z)."""
    return _FRACTION.sub(lambda m: f"{m[1]}.{(m[2] + '00000')[:6]}", value, count=1)


def parse_datetime(value, what):
    """Parse an ISO 8601 UTC timestamp into a naive UTC datetime (``None`` stays ``None``)."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"CIS sent a {what} that is not a date: {value!r}")
    try:
        parsed = datetime.datetime.fromisoformat(_six_fraction_digits(value.replace("Z", "+00:00")))
    except ValueError:
        raise ProtocolError(f"CIS sent a {what} that is not a date: {value!r}") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def _require(obj, key, kind, what):
    if not isinstance(obj, dict):
        raise ProtocolError(f"CIS sent a {what} that is not a JSON object")
    if key not in obj:
        raise ProtocolError(f"CIS sent a {what} without '{key}'")
    value = obj[key]
    if not isinstance(value, kind):
        raise ProtocolError(f"CIS sent a {what} whose '{key}' is not a {kind.__name__}")
    return value


def _word(mapping, value, what):
    if value not in mapping:
        raise ProtocolError(f"CIS sent an unknown {what} {value!r}")
    return mapping[value]


@dataclass(frozen=True)
class CatalogItem:
    product_id: str
    sku: str
    title: str
    description: str
    publisher: str
    platform: str
    language: str
    price: float
    currency: str
    status: str  # active | discontinued
    last_modified: datetime.datetime = None

    @classmethod
    def from_wire(cls, obj):
        what = "catalog item"
        price = _require(obj, "unitPrice", dict, what)
        amount = _require(price, "amount", (int, float), "catalog price")
        return cls(
            product_id=_require(obj, "productId", str, what),
            sku=_require(obj, "sku", str, what),
            title=_require(obj, "title", str, what),
            description=obj.get("description") or "",
            publisher=obj.get("publisher") or "",
            platform=obj.get("platform") or "",
            language=obj.get("language") or "",
            price=float(amount),
            currency=_require(price, "currency", str, "catalog price"),
            status=_word(CATALOG_STATUS, obj.get("status"), "catalog status"),
            last_modified=parse_datetime(obj.get("lastModified"), "lastModified"),
        )

    def to_wire(self):
        return {
            "productId": self.product_id,
            "sku": self.sku,
            "title": self.title,
            "description": self.description,
            "publisher": self.publisher,
            "platform": self.platform,
            "language": self.language,
            "unitPrice": {"amount": self.price, "currency": self.currency},
            "status": WIRE_CATALOG_STATUS[self.status],
            "lastModified": format_datetime(self.last_modified),
        }


@dataclass(frozen=True)
class Page:
    items: list
    continuation_token: str = None

    @classmethod
    def from_wire(cls, obj, item_class, what):
        items = _require(obj, "items", list, what)
        token = obj.get("continuationToken")
        if token is not None and not isinstance(token, str):
            raise ProtocolError(f"CIS sent a {what} whose continuationToken is not a string")
        return cls([item_class.from_wire(item) for item in items], token or None)


@dataclass(frozen=True)
class Account:
    """A CIS account. Creating one answers its id, role and status; reading one (GET) also
    answers who it is: external id, company name, email, country and language."""

    account_id: str
    role: str  # reseller | user
    status: str
    external_id: str = None
    company_name: str = None
    email: str = None
    country: str = None
    language: str = None

    @classmethod
    def from_wire(cls, obj):
        what = "account"
        return cls(
            account_id=_require(obj, "accountId", str, what),
            role=_word(ACCOUNT_ROLE, obj.get("role"), "account role"),
            status=obj.get("status") or "",
            external_id=obj.get("externalId"),
            company_name=obj.get("companyName"),
            email=obj.get("email"),
            country=obj.get("country"),
            language=obj.get("language"),
        )

    def to_wire(self):
        wire = {
            "accountId": self.account_id,
            "role": WIRE_ACCOUNT_ROLE[self.role],
            "status": self.status,
            "externalId": self.external_id,
            "companyName": self.company_name,
            "email": self.email,
            "country": self.country,
            "language": self.language,
        }
        return {k: v for k, v in wire.items() if v is not None}


def account_body(external_id, role, company_name, email, country, language, parent_account_id=None):
    return {
        "externalId": external_id,
        "role": WIRE_ACCOUNT_ROLE[role],
        "companyName": company_name,
        "email": email,
        "country": country,
        "language": language,
        "parentAccountId": parent_account_id,
    }


@dataclass(frozen=True)
class License:
    license_id: str
    token_status: str  # activated | redeemed | return_accepted
    token: str = field(default=None, repr=False)
    activation_link: str = None
    activation_date: datetime.datetime = None
    return_status: str = "none"  # none | successful
    product_id: str = None
    last_modified: datetime.datetime = None
    # Who it was sold to and when: in the listing and on a license read, for an import.
    order_id: str = None
    order_date: datetime.datetime = None
    customer_account_id: str = None
    reseller_account_id: str = None
    # The reseller's own reference of the order (externalReference): how a license whose order's
    # answer was lost is found again.
    external_reference: str = None

    @classmethod
    def from_wire(cls, obj):
        what = "license"
        return_status = obj.get("returnStatus")
        return cls(
            license_id=_require(obj, "licenseId", str, what),
            token_status=_word(TOKEN_STATUS, obj.get("tokenStatus"), "token status"),
            token=obj.get("token"),
            activation_link=obj.get("activationLink"),
            activation_date=parse_datetime(obj.get("activationDate"), "activationDate"),
            return_status=_word(RETURN_STATUS, return_status, "return status")
            if return_status is not None
            else "none",
            product_id=obj.get("productId"),
            last_modified=parse_datetime(obj.get("lastModified"), "lastModified"),
            order_id=obj.get("orderId"),
            order_date=parse_datetime(obj.get("orderDate"), "orderDate"),
            customer_account_id=obj.get("customerAccountId"),
            reseller_account_id=obj.get("resellerAccountId"),
            external_reference=obj.get("externalReference"),
        )

    def to_wire(self):
        wire = {
            "licenseId": self.license_id,
            "token": self.token,
            "activationLink": self.activation_link,
            "tokenStatus": WIRE_TOKEN_STATUS[self.token_status],
            "activationDate": format_datetime(self.activation_date),
            "returnStatus": WIRE_RETURN_STATUS[self.return_status],
            "productId": self.product_id,
            "lastModified": format_datetime(self.last_modified),
            "orderId": self.order_id,
            "orderDate": format_datetime(self.order_date),
            "customerAccountId": self.customer_account_id,
            "resellerAccountId": self.reseller_account_id,
            "externalReference": self.external_reference,
        }
        # activationDate stays, null until redeemed, as CIS sends it; other absent fields go.
        return {k: v for k, v in wire.items() if v is not None or k == "activationDate"}

    def as_dict(self):
        return asdict(self)


@dataclass(frozen=True)
class Order:
    order_id: str
    licenses: tuple

    @classmethod
    def from_wire(cls, obj):
        what = "order"
        licenses = _require(obj, "licenses", list, what)
        if not licenses:
            raise ProtocolError("CIS sent an order without any license")
        parsed = tuple(License.from_wire(item) for item in licenses)
        for lic in parsed:
            if not lic.token or not lic.activation_link:
                raise ProtocolError(
                    "CIS sent an order whose license has no token or activation link"
                )
        return cls(order_id=_require(obj, "orderId", str, what), licenses=parsed)

    def to_wire(self):
        return {"orderId": self.order_id, "licenses": [lic.to_wire() for lic in self.licenses]}


def order_body(product_id, customer_account_id, reseller_account_id=None, external_reference=None):
    return {
        "resellerAccountId": reseller_account_id,
        "customerAccountId": customer_account_id,
        "productId": product_id,
        "quantity": 1,
        "externalReference": external_reference,
    }


def parse_error(obj):
    """Return (code, message, correlation id) of a CIS error body; tolerant of odd bodies."""
    if not isinstance(obj, dict):
        return None, None, None
    return obj.get("code"), obj.get("message"), obj.get("correlationId")
