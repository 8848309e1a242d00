"""The reseller API's rules that need no database: problem details, cursors, idempotency
fingerprints, the rate limit's window and the shape of a request body.

Errors are RFC 9457 problem details (``application/problem+json``): ``type`` is a stable URI
reference per kind of error, ``/api/esd/v1/problems/<slug>``, which the server documents.
"""

import base64
import binascii
import hashlib
import json
import logging
import math

PREFIX = "/api/esd/v1"
PROBLEM_CONTENT_TYPE = "application/problem+json"
MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_BODY_BYTES = 256 * 1024
MAX_LINES = 100
MAX_QUANTITY = 1000
MAX_IDEMPOTENCY_KEY = 255

# slug: (status, title, what it means): the documented problem types.
PROBLEMS = {
    "unauthorized": (401, "No valid API key", "Send Authorization: Bearer <API key>."),
    "forbidden": (
        403,
        "Not an API user",
        "The key's user is not allowed to use the reseller API: an ESD manager allows it.",
    ),
    "not-found": (404, "Not found", "No such object among those the key may see."),
    "method-not-allowed": (405, "Method not allowed", "This path does not take this method."),
    "invalid-request": (
        400,
        "Invalid request",
        "The body or a parameter is malformed; `errors` says where.",
    ),
    "invalid-cursor": (400, "Invalid cursor", "Pass back the next_cursor of the previous page."),
    "idempotency-key-required": (
        400,
        "Idempotency-Key required",
        "Requests that create something need an Idempotency-Key header (1 to 255 characters).",
    ),
    "idempotency-key-reused": (
        409,
        "Idempotency-Key reused with another request",
        "This key was used for a different request; use a new key for a new request.",
    ),
    "validation-failed": (
        422,
        "Refused",
        "The request is well formed but what it asks is refused; `detail` says why.",
    ),
    "duplicate-customer": (
        409,
        "Customer exists",
        "One of your customers already has this name: use its id (`existing_id`).",
    ),
    "country-refused": (
        422,
        "Not sold in the customer's country",
        "A product is sold by an ESD instance of another country.",
    ),
    "credit-limit-exceeded": (
        422,
        "Credit limit exceeded",
        "The order would take the reseller above its credit limit.",
    ),
    "not-returnable": (
        422,
        "License cannot be returned",
        "Only delivered, unredeemed licenses of returnable products within the return window "
        "can be returned, once.",
    ),
    "return-already-requested": (
        409,
        "Return already requested",
        "A return of this license is already pending.",
    ),
    "license-not-yours": (
        403,
        "Not your license",
        "Only the user who bought the license, or a key holder of its company, acts on it.",
    ),
    "url-refused": (
        422,
        "Webhook URL refused",
        "Webhook URLs are https:// URLs of public hosts.",
    ),
    "rate-limited": (
        429,
        "Too many requests",
        "The key's request rate is limited; wait Retry-After seconds.",
    ),
    "internal-error": (500, "Internal error", "The server failed; try again later."),
}


class Problem(Exception):
    """An API error: its problem type (a key of PROBLEMS), detail and extension members.

    An answer, not a failure: the server logs it at debug level only."""

    loglevel = logging.DEBUG

    def __init__(self, slug, detail=None, headers=None, **extensions):
        if slug not in PROBLEMS:
            raise ValueError(f"unknown problem type {slug}")
        super().__init__(detail or PROBLEMS[slug][1])
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    @property
    def status(self):
        return PROBLEMS[self.slug][0]

    def body(self, instance=None):
        """The problem details object."""
        status, title, _about = PROBLEMS[self.slug]
        body = {"type": problem_type(self.slug), "title": title, "status": status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def iso(value):
    """A naive UTC datetime (as Odoo stores them) in ISO 8601 with its Z; None stays None."""
    return value.replace(microsecond=0).isoformat() + "Z" if value else None


def problem_type(slug):
    return f"{PREFIX}/problems/{slug}"


# ---------------------------------------------------------------------- cursors
def _query_tag(filters):
    canonical = json.dumps(filters, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def encode_cursor(after_id, filters):
    """A cursor continuing after record ``after_id`` of the query of ``filters``."""
    raw = json.dumps({"after": after_id, "q": _query_tag(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor, filters):
    """The id a cursor continues after; Problem invalid-cursor if it is not one of this query."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        after = data["after"]
        tag = data["q"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise Problem("invalid-cursor") from None
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise Problem("invalid-cursor")
    if tag != _query_tag(filters):
        raise Problem("invalid-cursor", "This cursor belongs to a query with other filters.")
    return after


def page_size(value):
    """The page size asked for (``limit``), within 1..MAX_PAGE."""
    if value in (None, ""):
        return DEFAULT_PAGE
    number = parse_int(value, "limit")
    if not 1 <= number <= MAX_PAGE:
        raise invalid("limit", f"between 1 and {MAX_PAGE}")
    return number


def parse_int(value, where):
    if isinstance(value, bool):
        raise invalid(where, "an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise invalid(where, "an integer")


def invalid(where, expected):
    return Problem(
        "invalid-request",
        f"{where} must be {expected}.",
        errors=[{"pointer": where, "detail": f"must be {expected}"}],
    )


# ---------------------------------------------------------------------- idempotency
def fingerprint(method, path, body):
    """What makes two requests the same: method, path and the JSON body's content (not its
    spacing or key order)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()


def check_idempotency_key(key):
    """The Idempotency-Key header, or Problem idempotency-key-required."""
    key = (key or "").strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise Problem("idempotency-key-required")
    return key


# ---------------------------------------------------------------------- rate limit
def rate_window(now_epoch, window_seconds):
    """(start of the fixed window holding ``now_epoch``, seconds until it ends)."""
    start = math.floor(now_epoch / window_seconds) * window_seconds
    return start, max(1, math.ceil(start + window_seconds - now_epoch))


# ---------------------------------------------------------------------- bodies
def parse_json(raw, content_type):
    """The JSON object of a request body; Problem invalid-request otherwise."""
    if len(raw) > MAX_BODY_BYTES:
        raise Problem("invalid-request", f"The body is larger than {MAX_BODY_BYTES} bytes.")
    if not (content_type or "").split(";")[0].strip().lower().endswith("json"):
        raise Problem("invalid-request", "Send the body as application/json.")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Problem("invalid-request", "The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Problem("invalid-request", "The body must be a JSON object.")
    return body


def order_request(body):
    """The order a body asks for: (customer: "self" or an id, reference, [(sku or None,
    product id or None, quantity)]); Problem invalid-request listing every error."""
    errors = []

    def error(pointer, detail):
        errors.append({"pointer": pointer, "detail": detail})

    customer = body.get("customer", "self")
    if customer != "self" and (not isinstance(customer, int) or isinstance(customer, bool)):
        error("/customer", 'must be "self" or the id of one of your customers')
    reference = body.get("reference")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 100):
        error("/reference", "must be a string of at most 100 characters")
    lines = body.get("lines")
    parsed = []
    if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_LINES:
        error("/lines", f"must be a list of 1 to {MAX_LINES} lines")
        lines = []
    for index, line in enumerate(lines):
        where = f"/lines/{index}"
        if not isinstance(line, dict):
            error(where, "must be an object")
            continue
        sku, product_id, quantity = line.get("sku"), line.get("product_id"), line.get("quantity")
        if (sku is None) == (product_id is None):
            error(where, "give either sku or product_id")
        elif sku is not None and (not isinstance(sku, str) or not sku.strip()):
            error(f"{where}/sku", "must be a non-empty string")
        elif product_id is not None and (
            not isinstance(product_id, int) or isinstance(product_id, bool)
        ):
            error(f"{where}/product_id", "must be an integer")
        if (
            not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or not 1 <= quantity <= MAX_QUANTITY
        ):
            error(f"{where}/quantity", f"must be a whole number from 1 to {MAX_QUANTITY}")
        parsed.append((sku.strip() if isinstance(sku, str) else None, product_id, quantity))
    unknown = set(body) - {"customer", "reference", "lines"}
    for name in sorted(unknown):
        error(f"/{name}", "is not a field of an order")
    if errors:
        raise Problem("invalid-request", "The order is not valid.", errors=errors)
    return customer, reference, parsed
