"""Azure AD client credentials with a certificate (msal): one token, reused until near expiry."""

import threading
import time
from urllib.parse import urlsplit

import msal
import requests

from .errors import AuthenticationError, ConfigurationError, UnavailableError, redact

# Hosts msal knows; any other authority (the simulator, a sovereign cloud proxy) skips discovery.
MICROSOFT_AUTHORITY_HOSTS = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.windows.net",
    "login.microsoft.com",
    "sts.windows.net",
}


class _MsalHttp:
    """The http_client msal calls: our session, our CA bundle, our timeouts."""

    def __init__(self, session, verify, timeout, authority_url=""):
        self.session = session
        self.verify = verify
        self.timeout = timeout
        self.authority = urlsplit(authority_url)

    def _url(self, url):
        """msal before 1.19 (Ubuntu 22.04's) drops an authority's port from the URLs it builds:
        put it back for the configured authority's host."""
        parts = urlsplit(url)
        if self.authority.port and parts.port is None and parts.hostname == self.authority.hostname:
            return parts._replace(netloc=self.authority.netloc).geturl()
        return url

    def post(self, url, params=None, data=None, headers=None, **_kwargs):
        return self.session.post(
            self._url(url),
            params=params,
            data=data,
            headers=headers,
            verify=self.verify,
            timeout=self.timeout,
        )

    def get(self, url, params=None, headers=None, **_kwargs):
        return self.session.get(
            self._url(url), params=params, headers=headers, verify=self.verify, timeout=self.timeout
        )

    def close(self):
        """msal may close its client; the session belongs to the CIS client."""


class TokenProvider:
    """Hands out one access token, asking Azure AD again only when it nears expiry."""

    def __init__(self, config, certificate, session, *, timeout=(5, 30), refresh_margin=300):
        self.config = config
        self.certificate = certificate
        self.http = _MsalHttp(session, config.verify, timeout, config.authority_url)
        self.refresh_margin = refresh_margin
        self.acquisitions = 0  # tokens obtained from the identity provider
        self._lock = threading.Lock()
        self._app = None
        self._token = None
        self._expires_at = 0.0

    def _application(self):
        if self._app is None:
            host = urlsplit(self.config.authority_url).hostname or ""
            try:
                self._app = msal.ConfidentialClientApplication(
                    self.config.client_id,
                    client_credential=self.certificate.msal_credential(),
                    authority=self.config.authority_url,
                    validate_authority=host in MICROSOFT_AUTHORITY_HOSTS,
                    http_client=self.http,
                    token_cache=msal.TokenCache(),
                )
            except requests.RequestException as exc:
                raise UnavailableError(
                    f"cannot reach the Azure AD authority {self.config.authority_url} "
                    f"({type(exc).__name__}): check the authority and the network"
                ) from None
            except ValueError as exc:
                raise ConfigurationError(
                    f"the authority {self.config.authority_url} is not usable: "
                    f"{redact(str(exc)).splitlines()[0]} Check the tenant and the authority."
                ) from None
        return self._app

    def get(self):
        with self._lock:
            if self._token and time.monotonic() < self._expires_at - self.refresh_margin:
                return self._token
            app = self._application()
            try:
                result = app.acquire_token_for_client(scopes=[self.config.scope])
            except requests.RequestException as exc:
                raise UnavailableError(
                    f"cannot reach the Azure AD token endpoint of {self.config.authority_url} "
                    f"({type(exc).__name__})"
                ) from None
            if "access_token" not in result:
                error = result.get("error", "unknown_error")
                description = redact(result.get("error_description") or "").splitlines()
                raise AuthenticationError(
                    f"Azure AD refused client {self.config.client_id} of tenant "
                    f"{self.config.tenant}: {error}"
                    + (f" ({description[0]})" if description else "")
                    + ". Check the client id, the tenant and that the certificate "
                    f"{self.certificate.thumbprint} is registered for the application."
                )
            if result.get("token_source", "identity_provider") == "identity_provider":
                self.acquisitions += 1
            self._token = result["access_token"]
            self._expires_at = time.monotonic() + float(result.get("expires_in", 3600))
            return self._token

    def invalidate(self):
        """Forget the token (CIS refused it): the next call asks Azure AD for a new one."""
        with self._lock:
            self._token = None
            self._app = None
