"""Client certificates: load a PFX (PKCS#12) or PEM, check it, compute its thumbprint and expiry."""

import datetime
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from .errors import CertificateError


@dataclass(frozen=True)
class Certificate:
    """A certificate with its private key, ready for msal."""

    thumbprint: str  # SHA-1, upper-case hex: Azure AD's x5t
    not_after: datetime.datetime  # UTC, naive
    subject: str
    certificate_pem: str = field(repr=False)
    private_key_pem: str = field(repr=False)

    def days_left(self, now=None):
        now = now or utcnow()
        return (self.not_after - now).days

    def msal_credential(self):
        return {
            "private_key": self.private_key_pem,
            "thumbprint": self.thumbprint,
            "public_certificate": self.certificate_pem,
        }


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def certificate_not_after(cert):
    """A cryptography certificate's expiry as a naive UTC datetime, on every supported version.

    ``not_valid_after_utc`` exists from cryptography 42; before it, ``not_valid_after`` is the
    same instant, naive (and deprecated from 42 on)."""
    aware = getattr(cert, "not_valid_after_utc", None)
    return aware.replace(tzinfo=None) if aware else cert.not_valid_after


def _password_bytes(password):
    """The password as bytes; None when there is none (Odoo gives False for an empty field)."""
    if not password:
        return None
    return password.encode() if isinstance(password, str) else password


def _is_pem(data):
    return b"-----BEGIN" in data


def load_certificate(
    data, password=None, *, expected_thumbprint=None, now=None, allow_expired=False
):
    """Load a PFX or PEM (certificate and private key in one file) from bytes.

    Raises :class:`CertificateError` with an operator-friendly message when the password is wrong,
    the file holds no key or no certificate, the key does not match the certificate, the
    certificate has expired, or its thumbprint is not the one configured.
    """
    if not data:
        raise CertificateError("no certificate was given: upload the PFX or PEM file")
    pwd = _password_bytes(password)
    if _is_pem(data):
        cert, key = _load_pem(data, pwd)
    else:
        cert, key = _load_pfx(data, pwd)
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise CertificateError(
            "the private key does not belong to the certificate: upload the matching pair"
        )
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    not_after = certificate_not_after(cert)
    if expected_thumbprint and expected_thumbprint.replace(":", "").upper() != thumbprint:
        raise CertificateError(
            f"the certificate's thumbprint {thumbprint} is not the configured "
            f"{expected_thumbprint.upper()}: upload the certificate registered with Azure AD"
        )
    if not allow_expired and not_after < (now or utcnow()):
        raise CertificateError(
            f"the certificate {thumbprint} expired on {not_after:%Y-%m-%d}: "
            "register a new certificate with Azure AD and upload it"
        )
    return Certificate(
        thumbprint=thumbprint,
        not_after=not_after,
        subject=cert.subject.rfc4514_string(),
        certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def load_certificate_file(path, password=None, **kwargs):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise CertificateError(f"cannot read the certificate file {path}: {exc.strerror}") from None
    return load_certificate(data, password, **kwargs)


def _load_pfx(data, pwd):
    try:
        key, cert, _extra = pkcs12.load_key_and_certificates(data, pwd)
    except ValueError:
        raise CertificateError(
            "the PFX file could not be opened: the password is wrong or the file is not a PFX"
        ) from None
    if cert is None or key is None:
        raise CertificateError("the PFX file must hold both the certificate and its private key")
    return cert, key


def _load_pem(data, pwd):
    certs = []
    for block in _CERTIFICATE_BLOCK.findall(data):  # load_pem_x509_certificates: cryptography 39
        try:
            certs.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue
    if not certs:
        raise CertificateError("the PEM file holds no certificate")
    try:
        key = serialization.load_pem_private_key(_private_key_block(data), pwd)
    except TypeError:
        # Encrypted key without a password, or a password for an unencrypted key.
        raise CertificateError(
            "the PEM private key is encrypted: enter its password"
            if pwd is None
            else "the PEM private key is not encrypted: leave the password empty"
        ) from None
    except ValueError:
        raise CertificateError(
            "the PEM private key could not be read: the password is wrong or the key is damaged"
        ) from None
    return certs[0], key


_CERTIFICATE_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
_KEY_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.S
)


def _private_key_block(data):
    match = _KEY_BLOCK.search(data)
    if not match:
        raise CertificateError("the PEM file holds no private key: add it after the certificate")
    return match.group(0)
