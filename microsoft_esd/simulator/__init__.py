"""A CIS ESD simulator: a real HTTPS server on 127.0.0.1 implementing our contract (v1).

It makes its own CA, server and client certificates in its state folder, serves the Azure AD token
endpoint (verifying each client assertion against the registered certificate), keeps accounts,
orders and licenses on disk, ships a seeded catalog per country and language, and has an admin
surface to redeem licenses, change the catalog and inject faults.
"""

from .admin import AdminClient
from .server import Simulator

__all__ = ["AdminClient", "Simulator"]
