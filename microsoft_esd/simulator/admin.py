"""Client of the simulator's admin surface (redeem, catalog changes, faults, stats)."""

import requests

from ..errors import EsdError, redact

ADMIN_HEADER = "X-Simulator-Admin"


class AdminClient:
    def __init__(self, config, timeout=10):
        if not config.admin_url or not config.admin_token:
            raise EsdError(
                "this configuration has no admin_url/admin_token: the sim commands need the "
                "instance.json written by the simulator"
            )
        self.config = config
        self.timeout = timeout
        self.session = requests.Session()

    def _call(self, method, path, body=None):
        try:
            response = self.session.request(
                method,
                self.config.admin_url.rstrip("/") + path,
                json=body,
                headers={ADMIN_HEADER: self.config.admin_token},
                timeout=self.timeout,
                verify=self.config.verify,
            )
        except requests.RequestException as exc:
            raise EsdError(
                f"cannot reach the simulator at {self.config.admin_url}: {type(exc).__name__}"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code >= 400:
            raise EsdError(
                f"the simulator refused: {redact(payload.get('message') or response.status_code)}",
                code=payload.get("code"),
                status=response.status_code,
            )
        return payload

    def stats(self):
        return self._call("GET", "/stats")

    def faults(self, **values):
        if not values:
            return self._call("GET", "/faults")
        return self._call("POST", "/faults", values)

    def clear_faults(self):
        return self._call("DELETE", "/faults")

    def redeem(self, license_id):
        return self._call("POST", f"/licenses/{license_id}/redeem")

    def force_status(self, license_id, token_status, return_status=None):
        body = {"tokenStatus": token_status, "returnStatus": return_status}
        return self._call("POST", f"/licenses/{license_id}/status", body)

    def licenses(self):
        return self._call("GET", "/licenses")["items"]

    def accounts(self):
        return self._call("GET", "/accounts")["items"]

    def reset_catalog(self):
        return self._call("DELETE", "/catalog")

    def catalog(self, op, product_id=None, title=None, amount=None, country=None, language=None):
        body = {
            "op": op,
            "productId": product_id,
            "title": title,
            "amount": amount,
            "country": country,
            "language": language,
        }
        return self._call("POST", "/catalog", body)
