"""The simulator's state: identities, accounts, orders, licenses and catalogs, kept on disk."""

import datetime
import hashlib
import json
import os
import secrets
import threading
import uuid
from pathlib import Path

from .. import contract
from . import catalog, pki

KEY_ALPHABET = "BCDFGHJKMPQRTVWXY2346789"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None, microsecond=0)


def new_token():
    """A license key in Microsoft's five-by-five form."""
    chars = [secrets.choice(KEY_ALPHABET) for _ in range(25)]
    return "-".join("".join(chars[i : i + 5]) for i in range(0, 25, 5))


def body_digest(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class SimError(Exception):
    """An error answer of the simulated CIS: HTTP status, CIS code and message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class State:
    """Everything the simulator remembers. All public methods are thread-safe."""

    def __init__(self, directory, *, extra_products=0, country="US", language="en-US"):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra_products = extra_products
        self.lock = threading.RLock()
        self._file = self.dir / "state.json"
        self._journal_file = self.dir / "journal.jsonl"
        self._catalog_file = self.dir / "catalog.json"
        if self._file.exists():
            self.data = json.loads(self._file.read_text())
            self._replay_journal()
        else:
            self.data = {
                "tenant": f"sim-{uuid.uuid4().hex[:8]}",
                "channel_id": f"CH-{secrets.token_hex(4).upper()}",
                "client_id": str(uuid.uuid4()),
                "resource_api": "https://cis.simulator.invalid",
                "certificate_password": "simpw-" + secrets.token_urlsafe(12),  # found by log scans
                "admin_token": secrets.token_urlsafe(24),
                "country": country,
                "language": language,
                "accounts": {},
                "orders": {},
                "licenses": {},
                "requests": {},
            }
        self.catalogs = (
            json.loads(self._catalog_file.read_text()) if self._catalog_file.exists() else {}
        )
        self._ensure_pki()
        self.save()
        self._journal = self._journal_file.open("a", encoding="utf-8")
        # The instance's own catalog exists from the start, so its products can be ordered at once.
        self.catalog(self.data["country"], self.data["language"])

    # ------------------------------------------------------------------ files
    @property
    def ca_path(self):
        return self.dir / "ca.pem"

    @property
    def server_cert_path(self):
        return self.dir / "server.pem"

    @property
    def server_key_path(self):
        return self.dir / "server.key"

    @property
    def client_pfx_path(self):
        return self.dir / "client.pfx"

    def _ensure_pki(self):
        if self.ca_path.exists() and self.client_pfx_path.exists():
            return
        ca_cert, ca_key = pki.make_ca()
        server_cert, server_key = pki.make_leaf(ca_cert, ca_key, "127.0.0.1", server=True)
        client_cert, client_key = pki.make_leaf(ca_cert, ca_key, "esd simulator client")
        self.ca_path.write_bytes(pki.cert_pem(ca_cert))
        self.server_cert_path.write_bytes(pki.cert_pem(server_cert) + pki.cert_pem(ca_cert))
        self.server_key_path.write_bytes(pki.key_pem(server_key))
        os.chmod(self.server_key_path, 0o600)
        self.client_pfx_path.write_bytes(
            pki.pfx_bytes(client_cert, client_key, self.data["certificate_password"])
        )
        os.chmod(self.client_pfx_path, 0o600)
        self.data["client_certificate_pem"] = pki.cert_pem(client_cert).decode()

    def _atomic_write(self, path, payload):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def save(self):
        """Write a full snapshot and empty the journal."""
        with self.lock:
            self._atomic_write(self._file, self.data)
            self._journal_file.write_text("")

    def _replay_journal(self):
        if not self._journal_file.exists():
            return
        for line in self._journal_file.read_text(encoding="utf-8").splitlines():
            try:
                collection, key, value = json.loads(line)
            except ValueError:
                break  # a torn last line after a crash: what follows was never acknowledged
            self.data[collection][key] = value

    def _put(self, *changes):
        """Record (collection, key, value) changes: in memory, then one journal line each.

        Appending keeps an order's cost constant; rewriting the whole state per order made the
        simulator, not the latency, the bottleneck of parallel clients.
        """
        with self.lock:
            for collection, key, value in changes:
                self.data[collection][key] = value
                self._journal.write(json.dumps([collection, key, value]) + "\n")
            self._journal.flush()

    def save_catalogs(self):
        with self.lock:
            self._atomic_write(self._catalog_file, self.catalogs)

    # ------------------------------------------------------------------ catalog
    def catalog(self, country, language):
        if country not in catalog.COUNTRIES:
            raise SimError(422, "UnsupportedCountry", f"country {country!r} is not served")
        if language not in catalog.LANGUAGES:
            raise SimError(422, "UnsupportedLanguage", f"language {language!r} is not served")
        key = f"{country}/{language}"
        with self.lock:
            if key not in self.catalogs:
                self.catalogs[key] = catalog.seed_items(
                    country, language, self.extra_products, now=utcnow()
                )
                self.save_catalogs()
            return self.catalogs[key]

    def reset_catalogs(self):
        """Admin: back to the seeded catalogs."""
        with self.lock:
            self.catalogs = {}
            self.catalog(self.data["country"], self.data["language"])

    def find_product(self, product_id):
        with self.lock:
            for items in self.catalogs.values():
                for item in items:
                    if item["productId"] == product_id:
                        return item
        return None

    def change_catalog(self, op, country, language, product_id=None, title=None, amount=None):
        """Admin: add, reprice or discontinue a product, as Microsoft does each month."""
        with self.lock:
            items = self.catalog(country, language)
            now = contract.format_datetime(utcnow())
            if op == "add":
                if not product_id or not title or amount is None:
                    raise SimError(422, "InvalidRequest", "add needs productId, title and amount")
                if any(i["productId"] == product_id for i in items):
                    raise SimError(409, "ProductExists", f"product {product_id} already exists")
                currency = catalog.COUNTRIES[country][0]
                item = contract.CatalogItem(
                    product_id=product_id,
                    sku=product_id.split(":")[0] + f"-{country}",
                    title=title,
                    description=catalog.LANGUAGES[language][1],
                    publisher="Microsoft",
                    platform="Windows",
                    language=language,
                    price=float(amount),
                    currency=currency,
                    status="active",
                    last_modified=utcnow(),
                ).to_wire()
                items.append(item)
            else:
                item = next((i for i in items if i["productId"] == product_id), None)
                if item is None:
                    raise SimError(404, "ProductNotFound", f"product {product_id} is not listed")
                if op == "reprice":
                    if amount is None:
                        raise SimError(422, "InvalidRequest", "reprice needs an amount")
                    item["unitPrice"]["amount"] = float(amount)
                elif op == "rename":
                    item["title"] = title
                elif op == "discontinue":
                    item["status"] = contract.WIRE_CATALOG_STATUS["discontinued"]
                elif op == "remove":
                    items.remove(item)
                else:
                    raise SimError(422, "InvalidRequest", f"unknown catalog operation {op!r}")
                item["lastModified"] = now
            self.save_catalogs()
            return item

    # ------------------------------------------------------------------ accounts
    def create_account(self, body, request_id=None):
        """Create the account, or update the one with the same externalId.

        Idempotent by request id, as orders are: the same MS-RequestId again gets the same answer
        and changes nothing. Each account keeps the request ids that created or updated it.
        """
        role = body.get("role")
        if role not in contract.ACCOUNT_ROLE:
            raise SimError(422, "InvalidRole", "role must be Reseller or User")
        if body.get("parentAccountId"):
            raise SimError(
                422, "ParentAccountNotAllowed", "an account may not have a parent account"
            )
        for key in ("externalId", "companyName", "email", "country"):
            if not body.get(key):
                raise SimError(422, "InvalidRequest", f"{key} is required")
        if "@" not in body["email"]:
            raise SimError(422, "InvalidEmail", "email is not a valid address")
        with self.lock:
            previous = self.replay(request_id, body) if request_id else None
            if previous is not None:
                return previous
            account = next(
                (
                    a
                    for a in self.data["accounts"].values()
                    if a["externalId"] == body["externalId"]
                ),
                None,
            )
            if account:
                account.update(
                    {
                        k: body[k]
                        for k in ("companyName", "email", "country", "language")
                        if k in body
                    }
                )
            else:
                account = {
                    "accountId": str(uuid.uuid4()),
                    "externalId": body["externalId"],
                    "role": role,
                    "companyName": body["companyName"],
                    "email": body["email"],
                    "country": body["country"],
                    "language": body.get("language"),
                    "status": "Active",
                }
            account["requestIds"] = [*account.get("requestIds", []), request_id]
            response = self._account_wire(account)
            changes = [("accounts", account["accountId"], account)]
            if request_id:
                changes.append(
                    ("requests", request_id, {"digest": body_digest(body), "response": response})
                )
            self._put(*changes)
            return response

    @staticmethod
    def _account_wire(account):
        return {k: account[k] for k in ("accountId", "role", "status")}

    # ------------------------------------------------------------------ orders and licenses
    def replay(self, request_id, body):
        """The stored answer of a request already processed under this request id, if any."""
        with self.lock:
            seen = self.data["requests"].get(request_id)
        if not seen:
            return None
        if seen["digest"] != body_digest(body):
            raise SimError(
                409,
                contract.CODE_REQUEST_ID_REUSED,
                "this MS-RequestId was already used for a different request",
            )
        return seen["response"]

    def create_order(self, request_id, body):
        with self.lock:
            previous = self.replay(request_id, body)
            if previous is not None:
                return previous
            product = self.find_product(body.get("productId"))
            if product is None:
                raise SimError(
                    404, "ProductNotFound", f"product {body.get('productId')} is unknown"
                )
            if product["status"] != "Active":
                raise SimError(422, "ProductDiscontinued", "the product is discontinued")
            if body.get("quantity") != 1:
                raise SimError(422, "InvalidQuantity", "quantity must be 1")
            customer = self.data["accounts"].get(body.get("customerAccountId") or "")
            if customer is None:
                raise SimError(422, "UnknownAccount", "customerAccountId is not a known account")
            reseller_id = body.get("resellerAccountId")
            if reseller_id:
                reseller = self.data["accounts"].get(reseller_id)
                if reseller is None or reseller["role"] != "Reseller":
                    raise SimError(
                        422, "UnknownReseller", "resellerAccountId is not a reseller account"
                    )
            now = contract.format_datetime(utcnow())
            order_id = f"ORD-{uuid.uuid4().hex[:12].upper()}"
            license_id = str(uuid.uuid4())
            lic = {
                "licenseId": license_id,
                "orderId": order_id,
                "productId": product["productId"],
                "token": new_token(),
                "activationLink": self._activation_link(),
                "tokenStatus": "Activated",
                "activationDate": None,
                "returnStatus": "None",
                "lastModified": now,
                "orderDate": now,
                "customerAccountId": customer["accountId"],
                "resellerAccountId": reseller_id,
                "externalReference": body.get("externalReference"),
            }
            response = {"orderId": order_id, "licenses": [self.license_wire(lic)]}
            self._put(
                ("licenses", license_id, lic),
                ("orders", order_id, {"orderId": order_id, "licenseIds": [license_id]}),
                ("requests", request_id, {"digest": body_digest(body), "response": response}),
            )
            return response

    def _activation_link(self):
        return f"{self.data.get('service_url', '')}/activate/{secrets.token_urlsafe(16)}"

    @staticmethod
    def license_wire(lic):
        wire = {
            k: lic.get(k)
            for k in (
                "licenseId",
                "productId",
                "token",
                "activationLink",
                "tokenStatus",
                "activationDate",
                "returnStatus",
                "lastModified",
                "orderId",
                "customerAccountId",
                "resellerAccountId",
                "externalReference",
            )
        }
        wire["orderDate"] = lic.get("orderDate") or lic["lastModified"]
        return wire

    def get_account(self, account_id):
        with self.lock:
            account = self.data["accounts"].get(account_id)
            if account is None:
                raise SimError(404, "AccountNotFound", f"account {account_id} is unknown")
            return {
                k: account.get(k)
                for k in (
                    "accountId",
                    "role",
                    "status",
                    "externalId",
                    "companyName",
                    "email",
                    "country",
                    "language",
                )
            }

    def get_license(self, license_id):
        with self.lock:
            lic = self.data["licenses"].get(license_id)
            if lic is None:
                raise SimError(404, "LicenseNotFound", f"license {license_id} is unknown")
            return self.license_wire(lic)

    def changed_licenses(self, since):
        with self.lock:
            rows = [
                self.license_wire(lic)
                for lic in self.data["licenses"].values()
                if since is None or contract.parse_datetime(lic["lastModified"], "date") >= since
            ]
        rows.sort(key=lambda lic: (lic["lastModified"], lic["licenseId"]))
        return rows

    def return_license(self, request_id, license_id):
        with self.lock:
            previous = self.replay(request_id, {"return": license_id})
            if previous is not None:
                return previous
            lic = self.data["licenses"].get(license_id)
            if lic is None:
                raise SimError(404, "LicenseNotFound", f"license {license_id} is unknown")
            if lic["tokenStatus"] == "Redeemed":
                raise SimError(
                    409,
                    contract.CODE_LICENSE_REDEEMED,
                    "the license was redeemed by the customer and can no longer be returned",
                )
            if lic["tokenStatus"] == "ReturnAccepted":
                raise SimError(
                    409, contract.CODE_ALREADY_RETURNED, "the license was already returned"
                )
            lic.update(
                tokenStatus="ReturnAccepted",
                returnStatus="Successful",
                lastModified=contract.format_datetime(utcnow()),
            )
            response = {"tokenStatus": "ReturnAccepted", "returnStatus": "Successful"}
            self._put(
                ("licenses", license_id, lic),
                (
                    "requests",
                    request_id,
                    {"digest": body_digest({"return": license_id}), "response": response},
                ),
            )
            return response

    def redeem(self, license_id):
        """Admin: the end customer redeems the key."""
        with self.lock:
            lic = self.data["licenses"].get(license_id)
            if lic is None:
                raise SimError(404, "LicenseNotFound", f"license {license_id} is unknown")
            if lic["tokenStatus"] != "Activated":
                raise SimError(409, "InvalidTransition", f"license is {lic['tokenStatus']}")
            now = contract.format_datetime(utcnow())
            lic.update(tokenStatus="Redeemed", activationDate=now, lastModified=now)
            self._put(("licenses", license_id, lic))
            return self.license_wire(lic)

    def force_status(self, license_id, token_status, return_status=None):
        """Admin: put a license in any state (to seed reconciliation differences)."""
        with self.lock:
            lic = self.data["licenses"].get(license_id)
            if lic is None:
                raise SimError(404, "LicenseNotFound", f"license {license_id} is unknown")
            if token_status not in contract.TOKEN_STATUS:
                raise SimError(422, "InvalidRequest", "unknown tokenStatus")
            lic["tokenStatus"] = token_status
            if return_status:
                lic["returnStatus"] = return_status
            lic["lastModified"] = contract.format_datetime(utcnow())
            self._put(("licenses", license_id, lic))
            return self.license_wire(lic)
