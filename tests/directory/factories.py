"""Small builders for directory records, going through the same services as the pages."""

from __future__ import annotations

import itertools

from refloop.directory import services
from refloop.lib.npi import make_npi

_serial = itertools.count(10_000_000)


def next_npi() -> str:
    return make_npi(f"1{next(_serial):08d}")


def provider(**fields):
    defaults = {
        "first_name": "Ana",
        "last_name": "Silvestri",
        "credentials": "MD",
        "npi": next_npi(),
        "specialty": "Family Medicine",
        "city": "Dublin",
        "state": "OH",
        "postal_code": "43017",
        "phone": "(614) 555-0142",
        "fax": "(614) 555-0143",
    }
    return services.provider_create(**(defaults | fields))


def practice(**fields):
    location = fields.pop(
        "location",
        {
            "address_line1": "6800 Perimeter Dr",
            "city": "Dublin",
            "state": "OH",
            "postal_code": "43017",
            "phone": "(614) 555-0200",
        },
    )
    defaults = {"name": "Dublin Family Medicine", "phone": "(614) 555-0200", "fax": "(614) 555-0201"}
    return services.practice_create(location=location, **(defaults | fields))
