"""License rules: allowed status transitions, returns, and how a key is shown to non-owners.

Status rules (the only transitions CIS may report and we apply): Activated -> Redeemed (with the
activation date) and Activated -> Return Accepted (return status Successful). Redeemed and Return
Accepted are final.
"""

import datetime
import math

ACTIVATED, REDEEMED, RETURN_ACCEPTED = "activated", "redeemed", "return_accepted"
ALLOWED = {(ACTIVATED, REDEEMED), (ACTIVATED, RETURN_ACCEPTED)}


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


def wait_seconds(last, now, interval):
    """Seconds left before an action done at ``last`` may be done again (0: it may be now)."""
    if not last:
        return 0
    return max(0, math.ceil(interval - (now - last).total_seconds()))
