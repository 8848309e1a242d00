"""Pure engine of the ``microsoft_esd`` Odoo addon.

Everything here runs without Odoo: the CIS client and its wire contract, certificate handling,
license rules, the HTTPS simulator and the ``esd`` command line. Nothing in this package may import
Odoo; the addon's models feed it plain values and map its results back to records.
"""

__version__ = "18.0.1.0.0"
