"""Which channel a letter goes by, and where: the recipient's preference first, then a fallback.

A referring provider says how they want reports (directory: fax, email, Direct, portal, mail). When the address
for that channel is missing the letter still goes, by the next channel that has one, and the delivery says why
("preferred Direct; no Direct address on file"). A patient gets email when they gave one, else mail. With no
address at all the delivery is created anyway and fails at once, so a person sees it in the failed queue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from refloop.directory.models import ReportChannel
from refloop.letters.models import DeliveryChannel

FALLBACKS: dict[str, tuple[str, ...]] = {
    ReportChannel.FAX: (DeliveryChannel.FAX, DeliveryChannel.DIRECT, DeliveryChannel.EMAIL, DeliveryChannel.MAIL),
    ReportChannel.EMAIL: (DeliveryChannel.EMAIL, DeliveryChannel.FAX, DeliveryChannel.DIRECT, DeliveryChannel.MAIL),
    ReportChannel.DIRECT: (DeliveryChannel.DIRECT, DeliveryChannel.FAX, DeliveryChannel.EMAIL, DeliveryChannel.MAIL),
    # refloop has no portal to push to: the office sees its patients on its status link; the letter itself
    # goes by the channels that reach a person.
    ReportChannel.PORTAL: (DeliveryChannel.FAX, DeliveryChannel.DIRECT, DeliveryChannel.EMAIL, DeliveryChannel.MAIL),
    ReportChannel.MAIL: (DeliveryChannel.MAIL, DeliveryChannel.FAX, DeliveryChannel.EMAIL),
}


@dataclass(frozen=True)
class Route:
    channel: str
    address: str
    note: str = ""


def fax_digits(number: str) -> str:
    """A US fax number as 10 digits, or "" when it is not one."""
    digits = re.sub(r"\D", "", number or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits if len(digits) == 10 else ""


def postal_address(name: str, entry) -> str:
    if entry is None or not entry.address_line1 or not entry.city:
        return ""
    city = f"{entry.city}, {entry.state} {entry.postal_code}".strip()
    return "\n".join(p for p in [name, entry.address_line1, entry.address_line2, city] if p)


def provider_addresses(provider, practice=None) -> dict[str, str]:
    office = practice.primary_location if practice is not None else None
    fax = fax_digits(provider.report_fax) or fax_digits(provider.fax)
    if not fax and office is not None:
        fax = fax_digits(office.fax)
    if not fax and practice is not None:
        fax = fax_digits(practice.fax)
    mail = postal_address(provider.display_name, provider) or postal_address(
        f"{provider.display_name}\n{practice.name}" if practice else provider.display_name, office
    )
    return {
        DeliveryChannel.FAX: fax,
        DeliveryChannel.EMAIL: provider.report_email or provider.email,
        DeliveryChannel.DIRECT: provider.direct_address,
        DeliveryChannel.MAIL: mail,
    }


def route_for_provider(provider, practice=None) -> Route:
    preferred = provider.report_channel
    addresses = provider_addresses(provider, practice)
    order = FALLBACKS.get(preferred, FALLBACKS[ReportChannel.FAX])
    for channel in order:
        if addresses[channel]:
            note = "" if channel == order[0] else _fallback_note(preferred, order, addresses, channel)
            return Route(channel, addresses[channel], note)
    return Route(order[0], "", f"No {ReportChannel(preferred).label.lower()} address or any other on file.")


def _fallback_note(preferred: str, order, addresses, chosen: str) -> str:
    missing = [
        DeliveryChannel(c).label.split(" (")[0].lower() for c in order[: order.index(chosen)] if not addresses[c]
    ]
    label = ReportChannel(preferred).label.lower()
    if preferred == ReportChannel.PORTAL:
        return (
            f"Prefers the portal (not connected); no {', no '.join(missing)} on file."
            if missing
            else ("Prefers the portal (not connected).")
        )
    return f"Prefers {label}; no {', no '.join(missing)} on file."


def route_for_patient(patient) -> Route:
    if patient.email:
        return Route(DeliveryChannel.EMAIL, patient.email)
    name = f"{patient.first_name} {patient.last_name}"
    address = postal_address(name, patient)
    return Route(
        DeliveryChannel.MAIL, address, "" if address else "The patient has no email or postal address on file."
    )


def channel_is_configured(channel: str) -> str:
    """ "" when refloop can send by `channel`, else what is missing (shown on the failed delivery)."""
    from django.conf import settings

    if channel == DeliveryChannel.FAX and not settings.LETTERS_FAX_GATEWAY:
        return "No fax gateway is configured (REFLOOP_FAX_GATEWAY)."
    if channel == DeliveryChannel.DIRECT and not (settings.LETTERS_DIRECT_HOST and settings.LETTERS_DIRECT_FROM):
        return "No Direct relay is configured (REFLOOP_DIRECT_HOST, REFLOOP_DIRECT_FROM)."
    return ""
