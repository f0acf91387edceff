"""Status messages to the referring side, written with each step of the loop (and sent by sending.py).

| step | message | what it says |
|---|---|---|
| accept | RRI^I12 (RF1-1 A), or OSU^O51 (ORC-1 OK) for a 360X referral | the referral is accepted |
| decline | RRI^I12 (RF1-1 R), or OSU^O51 (ORC-1 UA, ORC-16 the reason) | declined, with the reason |
| schedule / reschedule | SIU^S12 / SIU^S13 | the appointment (SCH, TQ1-7, AIL location, AIP clinician) |
| cancel | SIU^S15 | the appointment is cancelled |
| no-show | SIU^S26 | the patient did not come (SCH-25 Noshow) |

The message is written in the same transaction as the step (a post_save of ReferralEvent, as the automatic
letters are): a step rolled back leaves no message, and a crash after the commit cannot lose one. Its
MSH-10 and bytes are fixed then, so every attempt to send it is the same message (see sending.py).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.utils import timezone

from refloop.interop.hl7.ack import header, new_control_id
from refloop.interop.hl7.parse import escape, format_dtm, parse
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Referral, ReferralEvent

log = logging.getLogger(__name__)
VERSION = "2.5.1"
SIU = {"schedule": "S12", "reschedule": "S13", "cancel": "S15", "mark_no_show": "S26"}
FILLER_STATUS = {"S12": "Booked", "S13": "Booked", "S15": "Cancelled", "S26": "Noshow"}
PRIORITY = {"stat": "S", "urgent": "A", "routine": "R"}


def _e(value: object) -> str:
    return escape(str(value or "").strip())


def _date(value) -> str:
    return value.strftime("%Y%m%d") if value else ""


def _ei(raw: str) -> str:
    """An identifier stored as entity^namespace^universal^type, written back with each component escaped."""
    return "^".join(_e(part) for part in raw.split("^"))


def _our_id(referral: Referral) -> str:
    return f"{referral.pk}^{_e(settings.HL7_APPLICATION)}"


def _origin(referral: Referral) -> InterfaceMessage | None:
    """The accepted inbound HL7 message that created this referral, if it came that way."""
    return (
        InterfaceMessage.objects.filter(
            referral=referral,
            direction=InterfaceMessage.Direction.INBOUND,
            protocol=InterfaceMessage.Protocol.HL7V2,
            status=InterfaceMessage.Status.ACCEPTED,
        )
        .order_by("pk")
        .first()
    )


def _addressee(origin: InterfaceMessage | None) -> tuple[str, str]:
    """MSH-5/MSH-6 of a status message: the application and facility that sent the referral."""
    if origin is None:
        return "", ""
    try:
        message = parse(origin.payload)
    except Exception:  # an old payload that no longer parses: send without an addressee
        return "", ""
    return message.raw(message.msh, 3), message.raw(message.msh, 4)


def _msh(message_type: str, control_id: str, origin: InterfaceMessage | None) -> str:
    application, facility = _addressee(origin)
    return header(
        message_type=message_type,
        control_id=control_id,
        receiving_application=application,
        receiving_facility=facility,
        version=VERSION,
        charset="UNICODE UTF-8",
    )


def _pid(referral: Referral) -> str:
    patient = referral.patient
    ids = [f"{patient.pk}^^^{_e(settings.HL7_APPLICATION)}^PI"]
    if patient.mrn:
        ids.append(f"{_e(patient.mrn)}^^^{_e(settings.HL7_APPLICATION)}^MR")
    address = ""
    if patient.address_line1 or patient.city:
        address = "^".join(
            [
                _e(patient.address_line1),
                _e(patient.address_line2),
                _e(patient.city),
                _e(patient.state),
                _e(patient.postal_code),
                "",
                "H",
            ]
        )
    phone = f"{_e(patient.phone)}^PRN^PH" if patient.phone else ""
    name = f"{_e(patient.last_name)}^{_e(patient.first_name)}^^^^^L"
    return "|".join(
        [
            "PID",
            "1",
            "",
            "~".join(ids),
            "",
            name,
            "",
            _date(patient.birth_date),
            patient.sex or "U",
            "",
            "",
            address,
            "",
            phone,
        ]
    )


def _xcn_provider(provider) -> str:
    """A referring provider or clinician as XCN: NPI^family^given^middle^suffix^prefix^degree^^^^^^NPI."""
    if provider is None:
        return ""
    npi = getattr(provider, "npi", "")
    parts = [
        _e(npi),
        _e(provider.last_name),
        _e(provider.first_name),
        _e(getattr(provider, "middle_name", "")),
        _e(getattr(provider, "name_suffix", "")),
        _e(getattr(provider, "name_prefix", "")),
        _e(provider.credentials),
    ]
    if npi:
        parts += ["", "NPI&2.16.840.1.113883.4.6&ISO", "L", "", "", "NPI"]
    return "^".join(parts).rstrip("^")


def _prd(role: str, label: str, provider) -> str:
    if provider is None:
        return f"PRD|{role}^{label}^HL70286"
    name = "^".join(
        [
            _e(provider.last_name),
            _e(provider.first_name),
            _e(getattr(provider, "middle_name", "")),
            _e(getattr(provider, "name_suffix", "")),
            _e(getattr(provider, "name_prefix", "")),
            _e(provider.credentials),
        ]
    ).rstrip("^")
    phones = []
    if getattr(provider, "phone", ""):
        phones.append(f"{_e(provider.phone)}^WPN^PH")
    if getattr(provider, "fax", ""):
        phones.append(f"{_e(provider.fax)}^WPN^FX")
    npi = f"{_e(provider.npi)}^NPI" if getattr(provider, "npi", "") else ""
    return "|".join(["PRD", f"{role}^{label}^HL70286", name, "", "", "~".join(phones), "", npi])


def _placer(referral: Referral) -> str:
    return _ei(referral.external_id) if referral.external_id else _our_id(referral)


def build_rri(
    referral: Referral, *, accepted: bool, reason: str, control_id: str, origin: InterfaceMessage | None
) -> str:
    """RRI^I12: the answer to a REF^I12, RF1-1 A (accepted) or R (rejected), with the decline reason in NTE."""
    status = "A^Accepted^HL70283" if accepted else "R^Rejected^HL70283"
    segments = [_msh("RRI^I12^RRI_I12", control_id, origin)]
    if origin is not None and origin.control_id:
        segments.append(f"MSA|AA|{_e(origin.control_id)}")
    segments.append(
        "|".join(
            [
                "RF1",
                status,
                f"{PRIORITY.get(referral.urgency, 'R')}^^HL70280",
                "",
                "",
                "",
                _placer(referral),
                format_dtm(referral.received_at),
                "",
                format_dtm(timezone.now()),
                f"^{_e(referral.reason[:200])}",
                _our_id(referral),
            ]
        )
    )
    segments.append(_prd("RP", "Referring Provider", referral.referring_provider))
    segments.append(_prd("RT", "Referred to Provider", referral.clinician))
    segments.append(_pid(referral))
    if not accepted and reason:
        segments.append(f"NTE|1||{_e(reason)}|^DECLINE_REASON")
    return "\r".join(segments) + "\r"


def build_osu(
    referral: Referral, *, accepted: bool, reason: str, control_id: str, origin: InterfaceMessage | None
) -> str:
    """OSU^O51 (360X referral accept/decline): ORC-1 OK (accepted) or UA (unable to accept, ORC-16 why)."""
    control, status = ("OK", "IP") if accepted else ("UA", "CA")
    orc = [
        "ORC",
        control,
        _placer(referral),
        _our_id(referral),
        "",
        status,
        "",
        "",
        "",
        format_dtm(timezone.now()),
        "",
        "",
        _xcn_provider(referral.referring_provider),
        "",
        "",
        "",
        "" if accepted else f"^{_e(reason[:200])}",
    ]
    segments = [_msh("OSU^O51^OSU_O51", control_id, origin), _pid(referral), "|".join(orc).rstrip("|")]
    return "\r".join(segments) + "\r"


def build_siu(
    referral: Referral, *, trigger: str, control_id: str, origin: InterfaceMessage | None, reason: str = ""
) -> str:
    """SIU^S12/S13/S15/S26: the appointment made for the referral, moved, cancelled, or missed."""
    start = format_dtm(referral.appointment_at) if referral.appointment_at else ""
    person = referral.coordinator
    # SCH-16 (filler contact) and SCH-20 (entered by): the referral's coordinator, else the practice's system.
    contact = (
        f"^{_e(person.last_name)}^{_e(person.first_name)}"
        if person and person.last_name
        else (f"^{_e(settings.HL7_APPLICATION)}")
    )
    sch = [
        "SCH",
        _our_id(referral),
        _our_id(referral),
        "",
        "",
        "",
        f"{trigger}^{_e(reason[:100]) if reason else ''}".rstrip("^"),
        f"^{_e(referral.reason[:200])}",
        "",
        "",
        "",
        f"^^^{start}",
        "",
        "",
        "",
        "",
        contact,
        "",
        "",
        "",
        contact,
        "",
        "",
        "",
        "",
        f"{FILLER_STATUS[trigger]}^^HL70278",
        _placer(referral),
    ]
    segments = [_msh(f"SIU^{trigger}^SIU_S12", control_id, origin), "|".join(sch)]
    if start:
        segments.append(f"TQ1|1||||||{start}")
    segments += [_pid(referral), "RGS|1|A"]
    if referral.location_id:
        segments.append(f"AIL|1|A|{_e(referral.location.name)}")
    if referral.clinician_id:
        segments.append(f"AIP|1|A|{_xcn_provider(referral.clinician)}|D^Doctor^HL70443")
    return "\r".join(segments) + "\r"


def message_for(event: ReferralEvent, control_id: str, origin: InterfaceMessage | None) -> tuple[str, str] | None:
    """(message type, text) for a step, or None when the step sends nothing."""
    referral = event.referral
    if event.action in ("accept", "decline"):
        accepted = event.action == "accept"
        reason = event.note or referral.decline_reason
        if origin is not None and origin.message_type == "OMG^O19":
            return "OSU^O51", build_osu(
                referral, accepted=accepted, reason=reason, control_id=control_id, origin=origin
            )
        return "RRI^I12", build_rri(referral, accepted=accepted, reason=reason, control_id=control_id, origin=origin)
    trigger = SIU.get(event.action)
    if trigger:
        text = build_siu(referral, trigger=trigger, control_id=control_id, origin=origin, reason=event.note)
        return f"SIU^{trigger}", text
    return None


def outbound_queue(*, event: ReferralEvent) -> InterfaceMessage | None:
    """Write the status message for this step, and queue its sending when a destination is configured."""
    if event.action not in SIU and event.action not in ("accept", "decline"):
        return None
    referral = event.referral
    origin = _origin(referral)
    control_id = new_control_id()
    built = message_for(event, control_id, origin)
    if built is None:
        return None
    message_type, text = built
    destination = settings.HL7_DESTINATION
    row = InterfaceMessage.objects.create(
        direction=InterfaceMessage.Direction.OUTBOUND,
        protocol=InterfaceMessage.Protocol.HL7V2,
        message_type=message_type,
        control_id=control_id,
        sender=settings.HL7_APPLICATION[:200],
        destination=destination,
        referral=referral,
        status=InterfaceMessage.Status.QUEUED,
        payload=text,
        detail="" if destination else "Not sent: no destination (REFLOOP_HL7_DESTINATION is not set).",
    )
    if destination:
        from refloop.interop.hl7.sending import enqueue_send

        enqueue_send(row)
    return row


@receiver(post_save, sender=ReferralEvent, dispatch_uid="interop.hl7.queue_on_event")
def queue_status_message(sender, instance: ReferralEvent, created: bool, raw: bool = False, **kwargs) -> None:
    if not created or raw or (instance.action not in SIU and instance.action not in ("accept", "decline")):
        return
    try:
        with transaction.atomic():
            outbound_queue(event=instance)
    except Exception:  # the step itself must not fail because its HL7 message could not be written
        log.exception("could not write the HL7 status message for referral event %s", instance.pk)
