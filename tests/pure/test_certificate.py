"""Loading client certificates: PFX and PEM, thumbprint, expiry, and the errors an operator sees."""

import datetime

import pytest
from cryptography.hazmat.primitives import hashes

from microsoft_esd.certificate import certificate_not_after, load_certificate
from microsoft_esd.errors import CertificateError
from microsoft_esd.simulator import pki


@pytest.fixture(scope="module")
def pair():
    return pki.make_self_signed_client("reseller app")


def test_pfx_with_password_gives_sha1_thumbprint_and_expiry(pair):
    cert, key = pair
    loaded = load_certificate(pki.pfx_bytes(cert, key, "s3cret"), "s3cret")
    assert loaded.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert loaded.not_after == certificate_not_after(cert)
    assert "reseller app" in loaded.subject
    assert loaded.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_pem_certificate_plus_encrypted_key(pair):
    cert, key = pair
    data = pki.cert_pem(cert) + pki.key_pem(key, "pw")
    assert load_certificate(data, "pw").thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()


def test_wrong_pfx_password_is_explained(pair):
    cert, key = pair
    with pytest.raises(CertificateError, match="password is wrong") as info:
        load_certificate(pki.pfx_bytes(cert, key, "right"), "wrong")
    assert "right" not in str(info.value) and "wrong" not in str(info.value).replace("is wrong", "")


def test_encrypted_pem_key_without_password(pair):
    cert, key = pair
    with pytest.raises(CertificateError, match="enter its password"):
        load_certificate(pki.cert_pem(cert) + pki.key_pem(key, "pw"), None)


def test_key_that_does_not_match_the_certificate(pair):
    cert, _key = pair
    _other_cert, other_key = pki.make_self_signed_client("someone else")
    with pytest.raises(CertificateError, match="does not belong to the certificate"):
        load_certificate(pki.cert_pem(cert) + pki.key_pem(other_key))


def test_expired_certificate_is_refused_with_its_date():
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=400)
    cert, key = pki.make_self_signed_client("old", days=30, not_before=start)
    with pytest.raises(CertificateError, match=r"expired on \d{4}-\d\d-\d\d"):
        load_certificate(pki.pfx_bytes(cert, key, "pw"), "pw")
    # The thumbprint and expiry can still be read to show them to the operator.
    loaded = load_certificate(pki.pfx_bytes(cert, key, "pw"), "pw", allow_expired=True)
    assert loaded.days_left() < 0


def test_thumbprint_must_match_the_configured_one(pair):
    cert, key = pair
    with pytest.raises(CertificateError, match="is not the configured"):
        load_certificate(pki.pfx_bytes(cert, key, "pw"), "pw", expected_thumbprint="AB" * 20)
    thumb = cert.fingerprint(hashes.SHA1()).hex()
    colons = ":".join(thumb[i : i + 2] for i in range(0, len(thumb), 2))
    assert load_certificate(pki.pfx_bytes(cert, key, "pw"), "pw", expected_thumbprint=colons)


def test_garbage_and_empty_files():
    with pytest.raises(CertificateError, match="not a PFX"):
        load_certificate(b"\x00\x01 not a certificate", "pw")
    with pytest.raises(CertificateError, match="upload the PFX or PEM"):
        load_certificate(b"", None)
    with pytest.raises(CertificateError, match="no private key"):
        cert, _ = pki.make_self_signed_client()
        load_certificate(pki.cert_pem(cert))


@pytest.mark.parametrize("empty", [None, "", False])
def test_an_empty_password_as_odoo_gives_it(pair, empty):
    """Odoo's form gives False for an empty password field: a PFX uploaded before its password
    is typed is explained, an unencrypted PEM key needs none (issue 33)."""
    cert, key = pair
    unencrypted_pem = pki.cert_pem(cert) + pki.key_pem(key)
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()
    assert load_certificate(unencrypted_pem, empty).thumbprint == thumbprint
    with pytest.raises(CertificateError, match="password is wrong"):
        load_certificate(pki.pfx_bytes(cert, key, "s3cret"), empty)
    with pytest.raises(CertificateError, match="enter its password"):
        load_certificate(pki.cert_pem(cert) + pki.key_pem(key, "pw"), empty)
