"""What differs between the stacks Odoo 18 runs on (make test-compat runs these on each).

Each test is a defect once seen on one stack: Debian 12's cryptography 38 and PyJWT 2.6, Odoo's
pins for Python 3.10/3.11 (cryptography 3.4.8), Python 3.10's fromisoformat, Python 3.13's strict
TLS verification.
"""

import base64
import datetime
import socket
import ssl
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import hashes

from microsoft_esd.auth import _MsalHttp
from microsoft_esd.certificate import certificate_not_after, load_certificate
from microsoft_esd.contract import parse_datetime
from microsoft_esd.simulator import pki


@pytest.fixture(scope="module")
def pair():
    return pki.make_self_signed_client("reseller app", days=400)


def test_expiry_is_read_on_every_cryptography(pair):
    """not_valid_after_utc is cryptography 42's; Debian 12 ships 38, Odoo pins 3.4.8."""
    cert, key = pair
    loaded = load_certificate(pki.pfx_bytes(cert, key, "pw"), "pw")
    expected = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs((loaded.not_after - expected) - datetime.timedelta(days=399)) < datetime.timedelta(
        minutes=5
    )
    assert loaded.not_after == certificate_not_after(cert)
    assert loaded.not_after.tzinfo is None


def test_pem_with_a_chain_loads_the_first_certificate(pair):
    """load_pem_x509_certificates is cryptography 39's: a PEM chain is read block by block."""
    cert, key = pair
    ca_cert, _ca_key = pki.make_ca()
    data = pki.cert_pem(cert) + pki.cert_pem(ca_cert) + pki.key_pem(key, "pw")
    loaded = load_certificate(data, "pw")
    assert loaded.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2026-05-01T10:00:00.1234567Z", datetime.datetime(2026, 5, 1, 10, 0, 0, 123456)),
        ("2026-05-01T10:00:00.12Z", datetime.datetime(2026, 5, 1, 10, 0, 0, 120000)),
        ("2026-05-01T10:00:00.5+02:00", datetime.datetime(2026, 5, 1, 8, 0, 0, 500000)),
        ("2026-05-01T10:00:00Z", datetime.datetime(2026, 5, 1, 10, 0, 0)),
        ("2026-05-01T10:00:00.123456Z", datetime.datetime(2026, 5, 1, 10, 0, 0, 123456)),
    ],
)
def test_dates_with_any_fraction_of_a_second(wire, expected):
    """.NET writes 7 fractional digits; Python 3.10's fromisoformat reads only 3 or 6."""
    assert parse_datetime(wire, "date") == expected


def test_simulator_tls_passes_strict_verification(simulator, sim_config):
    """Python 3.13 verifies with VERIFY_X509_STRICT by default: key identifiers are required."""
    context = ssl.create_default_context(cafile=sim_config.ca_bundle)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    host, port = simulator.url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=host) as tls,
    ):
        assert tls.version()


def test_assertion_signed_this_very_second_is_accepted(simulator, sim_config):
    """msal signs with a float iat; PyJWT < 2.7 compared it with a whole-second now."""
    loaded = load_certificate(
        open(sim_config.certificate_path, "rb").read(), sim_config.certificate_password
    )
    endpoint = f"{sim_config.authority_url}/oauth2/v2.0/token"
    now = time.time()
    claims = {
        "aud": endpoint,
        "iss": sim_config.client_id,
        "sub": sim_config.client_id,
        "jti": str(uuid.uuid4()),
        "iat": now + 0.9,
        "nbf": now + 0.9,
        "exp": now + 600,
    }
    x5t = base64.urlsafe_b64encode(bytes.fromhex(loaded.thumbprint)).rstrip(b"=").decode()
    assertion = jwt.encode(claims, loaded.private_key_pem, algorithm="RS256", headers={"x5t": x5t})
    answer = requests.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": sim_config.client_id,
            "scope": sim_config.scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        verify=sim_config.ca_bundle,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"


def test_authority_port_survives_msal_before_1_19():
    """msal 1.16 (Ubuntu 22.04) drops the authority's port from the discovery URL it builds."""
    http = _MsalHttp(None, True, 5, "https://127.0.0.1:8443/tenant")
    dropped = "https://127.0.0.1/tenant/v2.0/.well-known/openid-configuration"
    assert (
        http._url(dropped) == "https://127.0.0.1:8443/tenant/v2.0/.well-known/openid-configuration"
    )
    other = "https://login.microsoftonline.com/common/discovery/instance"
    assert http._url(other) == other
    assert _MsalHttp(None, True, 5, "https://login.microsoftonline.com/t")._url(other) == other
