"""The selections the addon's models share, written once."""

# How a company is known to CIS: a reseller ordering for end customers, or an end customer.
ESD_ROLES = [("reseller", "Reseller"), ("user", "User")]

# A license's status at Microsoft (microsoft_esd/licenses.py holds its transition rules).
TOKEN_STATUSES = [
    ("activated", "Activated"),
    ("redeemed", "Redeemed"),
    ("return_accepted", "Return Accepted"),
]

# A license's provisioning: ordered from CIS, or not yet, or refused.
LICENSE_SYNC_STATUSES = [
    ("unsynchronised", "Unsynchronised"),
    ("synchronized", "Synchronized"),
    ("failed", "Failed"),
]

# A partner's CIS account on one instance.
ACCOUNT_SYNC_STATUSES = [
    ("not_synced", "Not synced"),
    ("synchronized", "Synchronized"),
    ("failed", "Failed"),
]
