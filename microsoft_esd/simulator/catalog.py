"""The simulator's seeded catalog: Microsoft perpetual products per country and language."""

import hashlib

from .. import contract

# country -> (currency, price factor against the USD list price)
COUNTRIES = {
    "US": ("USD", 1.0),
    "CA": ("CAD", 1.36),
    "GB": ("GBP", 0.83),
    "IE": ("EUR", 0.97),
    "DE": ("EUR", 0.97),
    "AT": ("EUR", 0.97),
    "FR": ("EUR", 0.99),
    "BE": ("EUR", 0.99),
    "NL": ("EUR", 0.97),
    "ES": ("EUR", 0.95),
    "IT": ("EUR", 0.98),
    "AU": ("AUD", 1.52),
}

# language -> (name of the language in itself, description template)
LANGUAGES = {
    "en-US": ("English", "Perpetual license for one PC or Mac, delivered electronically."),
    "en-GB": ("English", "Perpetual licence for one PC or Mac, delivered electronically."),
    "de-DE": ("Deutsch", "Dauerlizenz für einen PC oder Mac, elektronisch geliefert."),
    "fr-FR": ("Français", "Licence perpétuelle pour un PC ou Mac, livrée par voie électronique."),
    "nl-NL": ("Nederlands", "Eeuwigdurende licentie voor één pc of Mac, elektronisch geleverd."),
    "es-ES": ("Español", "Licencia perpetua para un PC o Mac, entregada electrónicamente."),
    "it-IT": ("Italiano", "Licenza perpetua per un PC o Mac, consegnata elettronicamente."),
}

# (part number, title, platform, USD list price, status)
PRODUCTS = [
    ("EP2-06606", "Office Home 2024", "Windows/Mac", 149.99, "active"),
    ("EP2-06615", "Office Home & Business 2024", "Windows/Mac", 249.99, "active"),
    ("79P-06625", "Office LTSC Professional Plus 2024", "Windows", 579.00, "active"),
    ("79G-05410", "Office Home & Student 2021", "Windows/Mac", 149.99, "discontinued"),
    ("T5D-03516", "Office Home & Business 2021", "Windows/Mac", 249.99, "discontinued"),
    ("KW9-00664", "Windows 11 Home", "Windows", 139.00, "active"),
    ("FQC-10572", "Windows 11 Pro", "Windows", 199.99, "active"),
    ("FQC-09131", "Windows 10 Pro", "Windows", 199.99, "discontinued"),
    ("D86-05998", "Visio Standard 2024", "Windows", 339.99, "active"),
    ("D87-07930", "Visio Professional 2024", "Windows", 579.99, "active"),
    ("076-06015", "Project Standard 2024", "Windows", 679.99, "active"),
    ("H30-06044", "Project Professional 2024", "Windows", 1129.99, "active"),
    ("AAA-04650", "Access 2024", "Windows", 159.99, "active"),
    ("065-09510", "Outlook 2024", "Windows/Mac", 159.99, "active"),
    ("9EM-00691", "SQL Server 2022 Standard", "Windows", 989.00, "active"),
    ("C5E-01340", "Visual Studio Professional 2022", "Windows", 499.00, "active"),
]


def _product_id(part, language):
    return f"{part}:{language}"


def _synthetic_part(index):
    digest = hashlib.sha1(str(index).encode()).hexdigest().upper()
    return f"Z{digest[:2]}-{index:05d}"


def seed_items(country, language, extra_products=0, now=None):
    """The seeded catalog of one country and language, in wire form (``contract.CatalogItem``)."""
    currency, factor = COUNTRIES[country]
    language_name, description = LANGUAGES[language]
    rows = list(PRODUCTS)
    rows += [
        (_synthetic_part(i), f"Microsoft Product {i:05d}", "Windows", 10.0 + (i % 500), "active")
        for i in range(extra_products)
    ]
    items = []
    for part, title, platform, price, status in rows:
        items.append(
            contract.CatalogItem(
                product_id=_product_id(part, language),
                sku=f"{part}-{country}",
                title=f"{title} - {language_name} - ESD",
                description=description,
                publisher="Microsoft",
                platform=platform,
                language=language,
                price=round(price * factor, 2),
                currency=currency,
                status=status,
                last_modified=now,
            ).to_wire()
        )
    return items
