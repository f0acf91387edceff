"""A referral request read out of REF^I12 (v2.5 patient referral) or OMG^O19 (the ONC 360X referral request).

Only reads: nothing here touches the database. Every value that is missing or wrong raises a Problem naming
the segment and field, so the ACK tells the sender exactly what to fix.

Where each thing comes from:
| | REF^I12 | OMG^O19 (360X) |
|---|---|---|
| patient | PID-5 (the legal name, L, when several), PID-7, PID-8, PID-11, PID-13, PID-3 | same |
| referring provider | the PRD whose PRD-1 is RP: PRD-2 name, PRD-7 ids, PRD-5 phone | ORC-12, else OBR-16 |
| reason | RF1-10, else the NTE of type REASON_FOR_CONSULTATION, else DG1 | OBR-31, else ORC-16, else DG1 |
| urgency | RF1-2 (S stat, A urgent, R routine) | TQ1-9, else OBR-5 |
| the sender's referral id | RF1-6 | ORC-2 (placer order number) |
| dates | MSH-7 received; RF1-7 effective, RF1-8 expires | MSH-7 received; TQ1-7 start, TQ1-8 wanted by |
| diagnoses | DG1-3 in ICD-10-CM (I10/ICD10CM) | same |
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import timezone

from refloop.interop.hl7.parse import Message, Segment, parse_date, parse_dtm
from refloop.interop.hl7.problems import (
    REQUIRED_MISSING,
    TABLE_VALUE,
    UNSUPPORTED_EVENT,
    UNSUPPORTED_MESSAGE,
    UNSUPPORTED_VERSION,
    Problem,
)
from refloop.lib.icd10 import parse_icd10_list
from refloop.lib.npi import npi_problem

SUPPORTED = {"REF": "I12", "OMG": "O19"}
NPI_OID = "2.16.840.1.113883.4.6"
PRIORITY = {"S": "stat", "A": "urgent", "R": "routine", "P": "routine", "T": "routine", "C": "routine"}
SEX = {"F": "F", "M": "M", "O": "O", "U": "U", "A": "O", "N": "U", "X": "O"}
ICD10_SYSTEMS = {"I10", "I10C", "ICD10CM", "ICD-10-CM", "2.16.840.1.113883.6.90"}


@dataclass
class Header:
    message_type: str  # REF^I12
    control_id: str  # MSH-10 ('' when the sender left it out)
    sender: str  # MSH-3 and MSH-4, the key (with MSH-10) that recognises a resent message
    sent_at: dt.datetime | None


@dataclass
class ProviderRef:
    npi: str
    other_id: str  # an identifier that is not an NPI, with its assigning authority
    first_name: str
    last_name: str
    middle_name: str = ""
    prefix: str = ""
    suffix: str = ""
    credentials: str = ""
    phone: str = ""
    fax: str = ""
    where: str = ""  # PRD-7, ORC-12...: the field named when the provider cannot be used


@dataclass
class ReferralRequest:
    header: Header
    patient: dict
    provider: ProviderRef
    reason: str
    urgency: str
    external_id: str
    diagnosis_codes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dates: dict[str, dt.datetime] = field(default_factory=dict)


def _hd(message: Message, segment: Segment, number: int) -> str:
    """An HD field (application, facility) as one label: the namespace, else the universal id."""
    return message.value(segment, number, 1) or message.value(segment, number, 2)


def read_header(message: Message) -> Header:
    msh = message.msh
    kind, trigger = message.value(msh, 9, 1), message.value(msh, 9, 2)
    if not kind:
        raise Problem("the message type is missing", segment="MSH", field=9, code=REQUIRED_MISSING, ack_code="AR")
    if kind not in SUPPORTED:
        raise Problem(
            f"{kind}^{trigger} is not a message refloop takes (REF^I12 or OMG^O19)",
            segment="MSH",
            field=9,
            code=UNSUPPORTED_MESSAGE,
            ack_code="AR",
        )
    if trigger != SUPPORTED[kind]:
        raise Problem(
            f"{kind}^{trigger}: refloop takes {kind}^{SUPPORTED[kind]} only",
            segment="MSH",
            field=9,
            component=2,
            code=UNSUPPORTED_EVENT,
            ack_code="AR",
        )
    version = message.value(msh, 12)
    if version and not version.startswith("2."):
        raise Problem(
            f"version {version!r} is not HL7 v2", segment="MSH", field=12, code=UNSUPPORTED_VERSION, ack_code="AR"
        )
    sender = "^".join(p for p in (_hd(message, msh, 3), _hd(message, msh, 4)) if p)[:200]
    sent_at = parse_dtm(message.value(msh, 7), where=Problem("", segment="MSH", field=7))
    if sent_at and sent_at > timezone.now() + dt.timedelta(minutes=5):
        raise Problem(f"the message time {message.value(msh, 7)} is in the future", segment="MSH", field=7, code="102")
    return Header(f"{kind}^{trigger}", message.raw(msh, 10)[:64], sender, sent_at)


def read_referral(message: Message) -> ReferralRequest:
    header = read_header(message)
    if header.message_type == "REF^I12":
        return _ref_i12(message, header)
    return _omg_o19(message, header)


# Patient ----------------------------------------------------------------------------------------------------
def _required(segment_id: str, message: Message) -> Segment:
    segment = message.first(segment_id)
    if segment is None:
        raise Problem(f"the {segment_id} segment is missing", segment=segment_id, code="100")
    return segment


def _patient(message: Message) -> tuple[dict, list[str]]:
    pid = _required("PID", message)
    names = message.repetitions(pid, 5)
    legal = next((n for n in names if message.part(n, 7) == "L"), names[0] if names else "")
    last, first = message.part(legal, 1), message.part(legal, 2)
    if not last:
        raise Problem("the patient's family name is missing", segment="PID", field=5, component=1)
    if not first:
        raise Problem("the patient's given name is missing", segment="PID", field=5, component=2)
    birth = parse_date(message.value(pid, 7), where=Problem("", segment="PID", field=7))
    if birth is None:
        raise Problem("the patient's date of birth is missing", segment="PID", field=7)
    if birth > timezone.localdate():
        raise Problem(f"the date of birth {birth.isoformat()} is in the future", segment="PID", field=7, code="102")
    sex_code = message.value(pid, 8).upper()
    if sex_code and sex_code not in SEX:
        raise Problem(
            f"{sex_code!r} is not a sex code of table 0001 (F, M, O, U, A, N)", segment="PID", field=8, code=TABLE_VALUE
        )
    data = {
        "first_name": first[:100],
        "last_name": last[:100],
        "birth_date": birth,
        "sex": SEX.get(sex_code, "U"),
    }
    addresses = message.repetitions(pid, 11)
    home = next((a for a in addresses if message.part(a, 7) in ("H", "L", "M")), addresses[0] if addresses else "")
    if home:
        state = message.part(home, 4).upper()
        data |= {
            "address_line1": message.part(home, 1)[:200],
            "address_line2": message.part(home, 2)[:200],
            "city": message.part(home, 3)[:100],
            "state": state if len(state) == 2 and state.isalpha() else "",
            "postal_code": message.part(home, 5)[:10],
        }
    for number in (13, 14):
        for phone in message.repetitions(pid, number):
            use, kind = message.part(phone, 2), message.part(phone, 3)
            email = message.part(phone, 4)
            if (use == "NET" or kind in ("Internet", "X.400")) and email and "email" not in data:
                data.setdefault("email", email[:254])
            elif kind in ("", "PH", "CP") and not data.get("phone"):
                number_text = message.part(phone, 1) or _xtn_number(message, phone)
                if number_text:
                    data["phone"] = number_text[:40]
    language = message.value(pid, 15, 2) or message.value(pid, 15, 1)
    if language:
        data["preferred_language"] = language[:40]
    notes = []
    for ident in message.repetitions(pid, 3):
        value = message.part(ident, 1)
        if value:
            authority = message.part(ident, 4, 1) or message.part(ident, 4, 2)
            kind = message.part(ident, 5)
            label = " ".join(p for p in (kind or "ID", f"({authority})" if authority else "") if p)
            notes.append(f"Sender's patient identifier: {value} {label}")
    return {k: v for k, v in data.items() if v not in ("", None)}, notes


def _xtn_number(message: Message, phone: str) -> str:
    area, local, ext = message.part(phone, 6), message.part(phone, 7), message.part(phone, 8)
    if not local:
        return ""
    text = f"({area}) {local[:3]}-{local[3:]}" if area and len(local) == 7 else f"{area} {local}".strip()
    return f"{text} x{ext}" if ext else text


# Provider ---------------------------------------------------------------------------------------------------
def _npi_from(value: str, kind: str, authority: str, where: Problem) -> str:
    """`value` when it is given as an NPI; a Problem when it claims to be one and fails its check digit."""
    claims = (
        kind.upper() == "NPI"
        or authority.upper() in ("NPI", "CMS", NPI_OID)
        or (not kind and not authority and len(value) == 10 and value.isdigit())
    )
    if not claims:
        return ""
    problem = npi_problem(value)
    if problem:
        where.text = f"{value!r} is not a valid NPI: {problem}"
        where.code = "102"
        raise where
    return value


def _xcn(message: Message, segment: Segment, number: int) -> ProviderRef | None:
    reps = message.repetitions(segment, number)
    if not reps or not "".join(reps).strip("^~&"):
        return None
    npi, other = "", ""
    for rep in reps:
        value = message.part(rep, 1)
        if not value:
            continue
        authority = message.part(rep, 9, 1) or message.part(rep, 9, 2)
        kind = message.part(rep, 13)
        where = Problem("", segment=segment.id, field=number, component=1, occurrence=segment.occurrence)
        found = _npi_from(value, kind, authority, where)
        if found:
            npi = npi or found
        elif not other:
            other = f"{value} ({authority or kind or 'local id'})"
    first = reps[0]
    return ProviderRef(
        npi=npi,
        other_id=other,
        last_name=message.part(first, 2)[:100],
        first_name=message.part(first, 3)[:100],
        middle_name=message.part(first, 4)[:100],
        suffix=message.part(first, 5)[:20],
        prefix=message.part(first, 6)[:20],
        credentials=message.part(first, 7)[:60],
        where=f"{segment.id}-{number}",
    )


def _prd(message: Message) -> ProviderRef:
    prds = message.all("PRD")
    if not prds:
        raise Problem("the PRD segment (the referring provider) is missing", segment="PRD", code="100")
    referring = next((p for p in prds if message.value(p, 1).upper() == "RP"), None)
    if referring is None:
        roles = ", ".join(message.value(p, 1) or "(none)" for p in prds)
        raise Problem(
            f"no PRD names the referring provider (PRD-1 = RP); the PRD roles given are {roles}",
            segment="PRD",
            field=1,
        )
    name = message.repetitions(referring, 2)
    first_name = name[0] if name else ""
    npi, other = "", ""
    for rep in message.repetitions(referring, 7):
        value, kind = message.part(rep, 1), message.part(rep, 2)
        if not value:
            continue
        where = Problem("", segment="PRD", field=7, component=1, occurrence=referring.occurrence)
        found = _npi_from(value, kind, "", where)
        if found:
            npi = npi or found
        elif not other:
            other = f"{value} ({kind or 'local id'})"
    ref = ProviderRef(
        npi=npi,
        other_id=other,
        last_name=message.part(first_name, 1)[:100],
        first_name=message.part(first_name, 2)[:100],
        middle_name=message.part(first_name, 3)[:100],
        suffix=message.part(first_name, 4)[:20],
        prefix=message.part(first_name, 5)[:20],
        credentials=message.part(first_name, 6)[:60],
        where="PRD-7",
    )
    if not ref.last_name:
        raise Problem(
            "the referring provider's family name is missing",
            segment="PRD",
            field=2,
            component=1,
            occurrence=referring.occurrence,
        )
    for phone in message.repetitions(referring, 5):
        kind = message.part(phone, 3)
        number = message.part(phone, 1) or _xtn_number(message, phone)
        if kind == "FX" and not ref.fax:
            ref.fax = number[:40]
        elif kind in ("", "PH") and not ref.phone:
            ref.phone = number[:40]
    return ref


# Coded things ---------------------------------------------------------------------------------------------------
def _diagnoses(message: Message) -> list[str]:
    codes: list[str] = []
    for dg1 in message.all("DG1"):
        code, system = message.value(dg1, 3, 1), message.value(dg1, 3, 3).upper()
        if not code or system not in ICD10_SYSTEMS:
            continue
        try:
            codes += parse_icd10_list([code])
        except ValueError as exc:
            raise Problem(
                str(exc), segment="DG1", field=3, component=1, occurrence=dg1.occurrence, code="102"
            ) from None
    return list(dict.fromkeys(codes))


def _diagnosis_texts(message: Message) -> str:
    texts = [message.value(d, 3, 2) or message.value(d, 4) for d in message.all("DG1")]
    return "; ".join(t for t in texts if t)


def _urgency(code: str, where: Problem) -> str:
    code = code.strip().upper()
    if not code:
        return "routine"
    if code not in PRIORITY:
        where.text = f"{code!r} is not a priority refloop knows (S stat, A ASAP, R routine)"
        where.code = TABLE_VALUE
        raise where
    return PRIORITY[code]


def _notes_from_nte(message: Message) -> tuple[str, list[str]]:
    """(the reason for the consultation, the other notes with their labels) from the NTE segments."""
    reason = ""
    notes = []
    for nte in message.all("NTE"):
        text = "\n".join(message.text_of(r) for r in message.repetitions(nte, 3)).strip()
        if not text:
            continue
        label = (message.value(nte, 4, 2) or message.value(nte, 4, 1)).replace("_", " ").strip().capitalize()
        if "REASON" in label.upper() and not reason:
            reason = text
        else:
            notes.append(f"{label}: {text}" if label else text)
    return reason, notes


def _ei(message: Message, segment: Segment | None, number: int) -> str:
    """An EI (entity^namespace^universal id^type) as sent, unescaped, without trailing empty components."""
    reps = message.repetitions(segment, number)
    if not reps or not message.part(reps[0], 1):
        return ""
    return "^".join(message.part(reps[0], n) for n in range(1, 5)).rstrip("^")


def _day(moment: dt.datetime) -> str:
    return (
        timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")
        if moment.hour or moment.minute
        else (moment.strftime("%Y-%m-%d"))
    )


# Message types --------------------------------------------------------------------------------------------------
def _ref_i12(message: Message, header: Header) -> ReferralRequest:
    rf1 = _required("RF1", message)
    patient, notes = _patient(message)
    provider = _prd(message)
    urgency = _urgency(message.value(rf1, 2), Problem("", segment="RF1", field=2, code=TABLE_VALUE))
    reasons = [message.part(r, 2) or message.part(r, 1) for r in message.repetitions(rf1, 10)]
    nte_reason, nte_notes = _notes_from_nte(message)
    reason = "; ".join(r for r in reasons if r) or nte_reason or _diagnosis_texts(message)
    if not reason:
        raise Problem(
            "the reason for the referral is missing (RF1-10, or an NTE with NTE-4 REASON_FOR_CONSULTATION)",
            segment="RF1",
            field=10,
        )
    dates = {}
    for number, key in ((7, "effective"), (8, "expires"), (9, "processed")):
        moment = parse_dtm(message.value(rf1, number), where=Problem("", segment="RF1", field=number))
        if moment:
            dates[key] = moment
    if "effective" in dates and "expires" in dates and dates["expires"] < dates["effective"]:
        raise Problem("the referral expires before it takes effect", segment="RF1", field=8, code="102")
    kind = message.value(rf1, 3, 2) or message.value(rf1, 3, 1)
    notes += [f"Referral type: {kind}"] if kind else []
    notes += nte_notes
    return ReferralRequest(
        header=header,
        patient=patient,
        provider=provider,
        reason=reason[:4000],
        urgency=urgency,
        external_id=_ei(message, rf1, 6)[:100],
        diagnosis_codes=_diagnoses(message),
        notes=notes,
        dates=dates,
    )


def _omg_o19(message: Message, header: Header) -> ReferralRequest:
    orc = _required("ORC", message)
    obr = _required("OBR", message)
    control = message.value(orc, 1).upper()
    if control != "NW":
        raise Problem(
            f"order control {control or '(empty)'}: refloop takes new referral requests (NW) only",
            segment="ORC",
            field=1,
            code=TABLE_VALUE,
        )
    patient, notes = _patient(message)
    provider = _xcn(message, orc, 12) or _xcn(message, obr, 16)
    if provider is None:
        raise Problem("the ordering (referring) provider is missing", segment="ORC", field=12)
    if not provider.last_name:
        raise Problem("the referring provider's family name is missing", segment="ORC", field=12, component=2)
    tq1 = message.first("TQ1")
    priority = message.value(tq1, 9)
    if priority:
        urgency = _urgency(priority, Problem("", segment="TQ1", field=9, code=TABLE_VALUE))
    else:
        urgency = _urgency(message.value(obr, 5), Problem("", segment="OBR", field=5, code=TABLE_VALUE))
    reasons = [message.part(r, 2) or message.part(r, 1) for r in message.repetitions(obr, 31)]
    nte_reason, nte_notes = _notes_from_nte(message)
    reason = "; ".join(r for r in reasons if r) or message.value(orc, 16, 2) or nte_reason or _diagnosis_texts(message)
    if not reason:
        raise Problem("the reason for the referral is missing", segment="OBR", field=31)
    dates = {}
    for number, key in ((7, "start"), (8, "wanted_by")):
        moment = parse_dtm(message.value(tq1, number), where=Problem("", segment="TQ1", field=number))
        if moment:
            dates[key] = moment
    service = message.value(obr, 4, 2) or message.value(obr, 4, 1)
    notes += [f"Requested service: {service}"] if service else []
    notes += nte_notes
    placer = _ei(message, orc, 2) or _ei(message, obr, 2)
    if not placer:
        raise Problem("the placer order number (the referral's id) is missing", segment="ORC", field=2)
    return ReferralRequest(
        header=header,
        patient=patient,
        provider=provider,
        reason=reason[:4000],
        urgency=urgency,
        external_id=placer[:100],
        diagnosis_codes=_diagnoses(message),
        notes=notes,
        dates=dates,
    )


DATE_LABELS = {
    "effective": "Referral effective",
    "expires": "Referral expires",
    "processed": "Processed by the sender",
    "start": "Wanted from",
    "wanted_by": "Wanted by",
}


def notes_text(request: ReferralRequest) -> str:
    lines = [f"{DATE_LABELS[k]}: {_day(v)}" for k, v in request.dates.items()]
    if request.provider.other_id:
        lines.append(f"Referring provider's identifier at the sender: {request.provider.other_id}")
    return "\n".join(lines + request.notes)
