"""The configuration of one CIS instance, as plain values.

The keys are the ones the Odoo model ``esd.instance`` uses and the simulator writes into its
``instance.json``, so one can be turned into the other.
"""

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigurationError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com/{tenant}"

REQUIRED = ("service_url", "resource_api", "tenant", "channel_id", "client_id")


@dataclass(frozen=True)
class InstanceConfig:
    service_url: str
    resource_api: str
    tenant: str
    channel_id: str
    client_id: str
    authority: str = ""
    certificate_path: str = ""
    certificate_password: str = field(default="", repr=False)
    certificate_data: bytes = field(default=b"", repr=False)
    ca_bundle: str = ""
    country: str = "US"
    language: str = "en-US"
    thumbprint: str = ""
    admin_url: str = ""
    admin_token: str = field(default="", repr=False)

    def __post_init__(self):
        missing = [name for name in REQUIRED if not getattr(self, name)]
        if missing:
            raise ConfigurationError(
                f"the instance configuration lacks {', '.join(missing)}: fill them in and retry"
            )
        if not self.service_url.startswith("https://"):
            raise ConfigurationError(
                f"the service URL must start with https:// (got {self.service_url!r})"
            )

    @property
    def authority_url(self):
        return (self.authority or DEFAULT_AUTHORITY).format(tenant=self.tenant).rstrip("/")

    @property
    def scope(self):
        return f"{self.resource_api.rstrip('/')}/.default"

    @property
    def verify(self):
        """The value for requests' ``verify=``: the CA bundle when one is configured."""
        return self.ca_bundle or True

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in values.items() if k in known and v is not None}
        return cls(**data)

    @classmethod
    def from_file(cls, path):
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"configuration file {path} is not readable JSON: {exc}"
            ) from None
        if not isinstance(values, dict):
            raise ConfigurationError(f"configuration file {path} must hold a JSON object")
        # Relative paths in the file are relative to the file itself.
        for key in ("certificate_path", "ca_bundle"):
            if values.get(key) and not Path(values[key]).is_absolute():
                values[key] = str(path.parent / values[key])
        return cls.from_dict(values)
