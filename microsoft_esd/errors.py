"""Typed errors of the CIS client.

Every message is written for an operator: it says what failed and what to check. No message may
carry a secret: an access token, a license key (ESD token), a certificate or a password. Text coming
from outside (a CIS error message, an exception) passes through :func:`redact` first.
"""

import re

# A Microsoft product key: five groups of five characters.
_PRODUCT_KEY = re.compile(r"\b[A-Z0-9]{5}(?:-[A-Z0-9]{5}){4}\b", re.I)
# Bearer tokens, JWTs and long opaque strings that look like credentials.
_BEARER = re.compile(r"(?i)bearer\s+[\w\-.~+/=]+")
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*")
_SECRET_FIELD = re.compile(
    r'(?i)("?(?:token|access_token|client_assertion|password|passphrase|private_key)"?\s*[:=]\s*)'
    r'("[^"]*"|[^\s,&}]+)'
)


def redact(text):
    """Return ``text`` with anything that looks like a key, a token or a password masked."""
    if not text:
        return text
    text = str(text)
    text = _BEARER.sub("Bearer ***", text)
    text = _JWT.sub("***", text)
    text = _SECRET_FIELD.sub(lambda m: m.group(1) + "***", text)
    return _PRODUCT_KEY.sub("*****-*****-*****-*****-*****", text)


class EsdError(Exception):
    """Base class. ``transient`` tells a job runner whether trying again later may succeed."""

    transient = False

    def __init__(self, message, *, correlation_id=None, status=None, code=None):
        self.message = redact(message)
        self.correlation_id = correlation_id
        self.status = status
        self.code = code
        super().__init__(self.message)

    def __str__(self):
        text = self.message
        if self.correlation_id:
            text += f" (correlation id {self.correlation_id})"
        return text


class ConfigurationError(EsdError):
    """The instance configuration is incomplete or inconsistent."""


class CertificateError(ConfigurationError):
    """The certificate cannot be used: unreadable, wrong password, mismatched key, expired..."""


class AuthenticationError(EsdError):
    """Azure AD refused the client (401/403 or a failed token request)."""


class NotFoundError(EsdError):
    """CIS answered 404."""


class ValidationError(EsdError):
    """CIS refused the request as invalid (400/422)."""


class ConflictError(EsdError):
    """CIS answered 409; ``code`` carries its reason, e.g. ``LicenseRedeemed``."""


class RateLimitedError(EsdError):
    """CIS answered 429 and the Retry-After did not fit in the deadline."""

    transient = True

    def __init__(self, message, *, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class UnavailableError(EsdError):
    """CIS could not be reached or answered 5xx (after the retries the deadline allowed)."""

    transient = True


class ProtocolError(EsdError):
    """CIS answered something that does not follow the contract (malformed body, missing field)."""
