{
    "name": "Microsoft ESD",
    "summary": "Sell perpetual Microsoft licenses (ESD tokens) through Microsoft's CIS API",
    "version": "18.0.1.0.0",
    "category": "Sales/Sales",
    "author": "microsoft_esd contributors",
    "license": "LGPL-3",
    "depends": ["sale_management", "account", "portal", "mail"],
    "external_dependencies": {"python": ["requests", "msal", "cryptography"]},
    "data": [
        "security/esd_security.xml",
        "views/esd_menus.xml",
    ],
    "application": False,
    "installable": True,
}
