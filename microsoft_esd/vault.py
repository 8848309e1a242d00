"""License keys at rest: always sealed, found again by a keyed hash.

The operator's secret comes from Odoo's configuration file (``esd_token_key``), never from the
database. It may list several secrets, comma-separated: the first seals new keys, every one of
them opens the keys sealed before (rotation). From each secret, HKDF derives two independent
keys: one encrypts (Fernet: AES-128-CBC with HMAC-SHA256), one hashes license keys for lookup
(HMAC-SHA256), so the lookup hash says nothing about the encryption key.

Without an operator secret, keys are sealed the same way with the fallback secret (the
database's own secret): no clear key in a table, a log or a failed query, though anyone with a
copy of the whole database can open them. The fallback secret also opens what it sealed once an
operator secret is configured.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED_V1 = "enc:v1:"  # the first format: Fernet key = SHA-256 of the secret, no key id
SEALED_V2 = "enc:v2:"  # enc:v2:<key id>:<Fernet token>
MIN_LENGTH = 32
MIN_DISTINCT = 12
GOOD_SECRET = (
    "use at least 32 random characters, e.g. the output of "
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
)
_SALT = b"microsoft_esd.vault"


class WeakSecretError(ValueError):
    """The configured secret is too weak to protect license keys."""


def check_secret(secret):
    """Refuse a secret that is too short or too repetitive, saying what a good one looks like."""
    if len(secret) < MIN_LENGTH:
        raise WeakSecretError(
            f"esd_token_key is too weak ({len(secret)} characters): {GOOD_SECRET}"
        )
    if len(set(secret)) < MIN_DISTINCT:
        raise WeakSecretError(
            f"esd_token_key is too weak (only {len(set(secret))} different characters): "
            f"{GOOD_SECRET}"
        )


def parse_secrets(value):
    """The secrets listed in ``esd_token_key`` (comma-separated), each checked; first = current."""
    secrets = [part.strip() for part in (value or "").split(",") if part.strip()]
    for secret in secrets:
        check_secret(secret)
    if len(set(secrets)) != len(secrets):
        raise WeakSecretError("esd_token_key lists the same secret twice")
    return secrets


def _derive(secret, purpose):
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode())
    return hkdf.derive(secret.encode())


def normalize(token):
    """Keys are compared whatever their case and surrounding spaces."""
    return token.strip().upper()


def _hmac(key, token):
    return hmac.new(key, normalize(token).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class _Key:
    key_id: str
    fernet: Fernet
    lookup: bytes
    legacy_fernet: Fernet  # opens enc:v1: values sealed with this secret
    legacy_lookup: bytes  # the lookup hash of the first format: HMAC keyed by the secret itself

    @classmethod
    def from_secret(cls, secret):
        return cls(
            key_id=_derive(secret, "key id").hex()[:8],
            fernet=Fernet(base64.urlsafe_b64encode(_derive(secret, "encryption"))),
            lookup=_derive(secret, "lookup"),
            legacy_fernet=Fernet(
                base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())
            ),
            legacy_lookup=secret.encode(),
        )


class Vault:
    """Seals and opens license keys, and hashes them for lookup."""

    def __init__(self, secrets=(), fallback_secret=None):
        if not secrets and not fallback_secret:
            raise ValueError("a vault needs a secret or a fallback secret")
        self._configured = [_Key.from_secret(secret) for secret in secrets]
        self._fallback = _Key.from_secret(fallback_secret) if fallback_secret else None
        # The first seals; all of them open (and give the hashes a key may be stored with).
        self._keys = self._configured + ([self._fallback] if self._fallback else [])

    @classmethod
    def from_config(cls, value, fallback_secret=None):
        """The vault of an ``esd_token_key`` option. Raises WeakSecretError for a weak secret."""
        return cls(parse_secrets(value), fallback_secret)

    @property
    def encrypting(self):
        """True when an operator secret (esd_token_key) seals the keys."""
        return bool(self._configured)

    def seal(self, plain):
        """The stored form of a secret value."""
        if not plain:
            return plain
        key = self._keys[0]
        return f"{SEALED_V2}{key.key_id}:{key.fernet.encrypt(plain.encode()).decode()}"

    def unseal(self, stored):
        """The plain value of a stored one. Raises ValueError when no configured secret opens it."""
        if not stored or not stored.startswith("enc:"):
            return stored  # stored in clear before 18.0.1.1.0
        if stored.startswith(SEALED_V2):
            key_id, _sep, token = stored[len(SEALED_V2) :].partition(":")
            candidates = [key.fernet for key in self._keys if key.key_id == key_id]
        elif stored.startswith(SEALED_V1):
            token = stored[len(SEALED_V1) :]
            candidates = [key.legacy_fernet for key in self._configured]
        else:
            raise ValueError("the license key is stored in an unknown format")
        for fernet in candidates:
            try:
                return fernet.decrypt(token.encode()).decode()
            except InvalidToken:
                continue
        raise ValueError(
            "no secret of esd_token_key opens this license key (was a secret removed?)"
        )

    def lookup_hash(self, plain):
        """The hash a license key is stored with, to find it again."""
        return _hmac(self._keys[0].lookup, plain)

    def lookup_hashes(self, plain):
        """Every hash a license key may have been stored with (rotation, older formats)."""
        keys = [k.lookup for k in self._keys] + [k.legacy_lookup for k in self._keys]
        return list(dict.fromkeys(_hmac(key, plain) for key in keys))

    @property
    def current_prefix(self):
        """How every value sealed today starts."""
        return f"{SEALED_V2}{self._keys[0].key_id}:"

    def is_current(self, stored):
        """True when ``stored`` is in the form :meth:`seal` gives today (no re-encryption due)."""
        return not stored or stored.startswith(self.current_prefix)
