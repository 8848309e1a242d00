"""License rules: allowed status transitions, returns, and how a key is kept and shown.

Status rules (the only transitions CIS may report and we apply): Activated -> Redeemed (with the
activation date) and Activated -> Return Accepted (return status Successful). Redeemed and Return
Accepted are final.
"""

import base64
import datetime
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

ACTIVATED, REDEEMED, RETURN_ACCEPTED = "activated", "redeemed", "return_accepted"
ALLOWED = {(ACTIVATED, REDEEMED), (ACTIVATED, RETURN_ACCEPTED)}
SEALED_PREFIX = "enc:v1:"


def transition(current, reported):
    """'same', 'apply' or 'refuse' for a status CIS reports against the one we hold."""
    if reported == current:
        return "same"
    return "apply" if (current, reported) in ALLOWED else "refuse"


def return_refusal(token_status, returnable, purchase_date, window_days, today):
    """Why a license cannot be returned now, or None when it can."""
    if token_status == REDEEMED:
        return "the customer already redeemed the license"
    if token_status == RETURN_ACCEPTED:
        return "the license was already returned"
    if token_status != ACTIVATED:
        return "the license was never delivered"
    if not returnable:
        return "the product is not returnable"
    if purchase_date + datetime.timedelta(days=window_days) < today:
        closed = purchase_date + datetime.timedelta(days=window_days)
        return f"the return window of {window_days} days closed on {closed:%Y-%m-%d}"
    return None


def mask(token):
    """Show only the last 5 characters of a key."""
    if not token:
        return token
    return "*****-*****-*****-*****-" + token[-5:]


def _fernet(key):
    digest = hashlib.sha256(key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def seal(token, key):
    """The stored form of a key: encrypted when a key is configured, else as is."""
    if not token or not key:
        return token
    return SEALED_PREFIX + _fernet(key).encrypt(token.encode()).decode()


def unseal(stored, key):
    """The key from its stored form. Raises ValueError when it cannot be decrypted."""
    if not stored or not stored.startswith(SEALED_PREFIX):
        return stored
    if not key:
        raise ValueError("the license key is encrypted but no esd_token_key is configured")
    try:
        return _fernet(key).decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
    except InvalidToken:
        raise ValueError(
            "the license key cannot be decrypted with the configured esd_token_key"
        ) from None


def keyed_hash(token, key):
    """A keyed digest to find a license by its key without storing the key in clear."""
    return hmac.new(key.encode(), token.strip().upper().encode(), hashlib.sha256).hexdigest()
