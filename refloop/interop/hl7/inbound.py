"""One inbound HL7 message, from the MLLP listener or a file: recognised if resent, read, acted on, answered.

The rules:
- The message row (InterfaceMessage, unique per sender and MSH-10), the referral and the ACK are written in one
  transaction. A message resent with the same MSH-10 gets the ACK recorded the first time and creates nothing;
  two copies arriving at once meet at the unique index and the second gets the first one's answer.
- A message that cannot be used creates nothing (the referral, patient and provider are in the transaction that
  is rolled back) and is kept with the refusal, so the interface log shows what came in and why it was refused.
- A message without MSH-10 (the standard requires it; the HAPI REF^I12 example has none) is taken, but only the
  sender's own referral id (RF1-6, ORC-2) can then recognise a resend: it is the referral's idempotency key.

Referring providers: matched by NPI (PRD-7, or ORC-12/OBR-16 with the NPI assigning authority or identifier
type). An NPI not in the directory creates the provider (source "Created from a referral"), as the intake
form's "new provider" does; an NPI that fails its check digit is refused with AE naming the field. A provider
sent without an NPI (a local id, as in both reference messages) is matched by name among the directory's
providers that have no NPI either, else created without one: the directory's duplicate finder and merge
bring such a record together with the real one later, and the sender's identifier is kept in its notes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F

from refloop.accounts.audit import audit_record
from refloop.directory.models import ReferringProvider, Source
from refloop.directory.services import provider_create
from refloop.interop.hl7 import mapping
from refloop.interop.hl7.ack import ack_code_of, ack_for
from refloop.interop.hl7.parse import Message, parse
from refloop.interop.hl7.problems import INTERNAL_ERROR, Problem
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Channel, Referral
from refloop.referrals.services import referral_receive

log = logging.getLogger(__name__)
Status = InterfaceMessage.Status
TRIES = 3  # a transaction that meets a deadlock or a locked database is run again this many times in all


@dataclass(frozen=True)
class Answer:
    ack: str  # the ACK, segments ended by CR
    code: str  # AA, AE or AR
    message: InterfaceMessage | None
    duplicate: bool = False
    referral: Referral | None = None

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


def hl7_message_receive(*, raw: bytes, via: str = "mllp") -> Answer:
    """Take one message (its bytes, without MLLP framing) and return the ACK to send back."""
    text = raw.decode("iso8859-1")  # what is stored when even the character set cannot be read
    try:
        message = parse(raw)
        text = message.text
        header = mapping.read_header(message)
    except Problem as problem:
        message = _parsed_or_none(raw)
        return _record_refusal(message, problem, text, via)
    existing = _earlier(header)
    if existing is not None:
        return _repeat(existing)
    fields = {
        "direction": InterfaceMessage.Direction.INBOUND,
        "protocol": InterfaceMessage.Protocol.HL7V2,
        "message_type": header.message_type,
        "control_id": header.control_id,
        "sender": header.sender,
        "payload": text,
        "attempts": 1,
    }
    for attempt in range(1, TRIES + 1):
        try:
            return _take(message, fields, via)
        except Problem as problem:
            return _refused(message, header, fields, problem, via)
        except ValidationError as exc:
            return _refused(message, header, fields, _problem_from_validation(exc), via)
        except IntegrityError:
            existing = _earlier(header)  # the same message, taken at the same moment on another connection
            if existing is not None:
                return _repeat(existing)
            log.exception("HL7 message from %s could not be processed", header.sender)
            break
        except OperationalError as exc:  # a deadlock or a locked database: the whole transaction again
            if attempt < TRIES:
                log.warning("HL7 message from %s: %s; trying again", header.sender, type(exc.__cause__ or exc).__name__)
                continue
            log.exception("HL7 message from %s could not be processed", header.sender)
        except Exception:
            log.exception("HL7 message from %s could not be processed", header.sender)
            break
    # Kept without its MSH-10, so that the sender's resend is processed again rather than answered alike.
    return _refused(message, header, fields | {"control_id": ""}, _internal(), via, status=Status.ERROR)


def _take(message: Message, fields: dict, via: str) -> Answer:
    with transaction.atomic():  # the referral and the message row, or neither
        request = mapping.read_referral(message)
        # The receipt goes in the audit trail first: appending takes the audit chain's lock (held to the commit),
        # so concurrent intakes take it before any other lock and cannot deadlock against each other on
        # PostgreSQL (the rollups' unique rows, written mid-transaction, made them do so under load).
        audit_record(
            actor=None,
            actor_label=f"HL7 {fields['sender'] or 'sender'}"[:150],
            action="interop.hl7.receive",
            detail={"type": fields["message_type"], "control_id": fields["control_id"], "via": via},
        )
        received = _receive(request)
        referral = received.referral
        note = "" if received.created else f"already received as referral {referral.pk}"
        ack = ack_for(message, code="AA", text=note)
        detail = f"referral #{referral.pk} " + ("created" if received.created else "already received (same id)")
        row = InterfaceMessage.objects.create(
            **fields, status=Status.ACCEPTED, referral=referral, response=ack, detail=f"{detail}; by {via}"
        )
    return Answer(ack, "AA", row, referral=referral)


def _internal() -> Problem:
    return Problem("refloop could not process the message now; send it again later", code=INTERNAL_ERROR)


def _refused(
    message: Message, header: mapping.Header, fields: dict, problem: Problem, via: str, status: str = Status.REJECTED
) -> Answer:
    """Keep the refused message with its answer (nothing else was written: the transaction was rolled back)."""
    ack = ack_for(message, code=problem.ack_code, problem=problem)
    try:
        row = InterfaceMessage.objects.create(
            **fields, status=status, response=ack, detail=f"{problem} (received by {via})"[:4000]
        )
    except IntegrityError:  # a copy of this message was refused at the same moment: its answer stands
        existing = _earlier(header)
        if existing is None:
            raise
        return _repeat(existing)
    return Answer(ack, problem.ack_code, row)


def internal_error_ack(raw: bytes) -> str:
    """AE 207 for a message that could not even be recorded (the sender keeps it and sends it again)."""
    problem = Problem("refloop could not record the message; send it again later", code=INTERNAL_ERROR)
    return ack_for(_parsed_or_none(raw), code="AE", problem=problem)


def _parsed_or_none(raw: bytes) -> Message | None:
    try:
        return parse(raw)
    except Problem:
        return None


def _earlier(header: mapping.Header) -> InterfaceMessage | None:
    if not header.control_id:
        return None
    return InterfaceMessage.objects.filter(
        direction=InterfaceMessage.Direction.INBOUND,
        protocol=InterfaceMessage.Protocol.HL7V2,
        sender=header.sender,
        control_id=header.control_id,
    ).first()


def _repeat(existing: InterfaceMessage) -> Answer:
    """A resend: the first answer again, and nothing created. Counted, so the log shows the sender retried."""
    InterfaceMessage.objects.filter(pk=existing.pk).update(attempts=F("attempts") + 1)
    code = ack_code_of(existing.response)
    return Answer(existing.response, code, existing, duplicate=True, referral=existing.referral)


def _record_refusal(message: Message | None, problem: Problem, text: str, via: str) -> Answer:
    ack = ack_for(message, code=problem.ack_code, problem=problem)
    msh = message.msh if message is not None else None
    row = InterfaceMessage.objects.create(
        direction=InterfaceMessage.Direction.INBOUND,
        protocol=InterfaceMessage.Protocol.HL7V2,
        message_type=_type_label(message),
        control_id="",  # a message refused before it was read is never "the same message" as a later one
        sender=(message.value(msh, 3) or message.value(msh, 4, 2)) if message is not None else "",
        status=Status.REJECTED,
        payload=text,
        detail=f"{problem} (received by {via})"[:4000],
        response=ack,
        attempts=1,
    )
    return Answer(ack, problem.ack_code, row)


def _type_label(message: Message | None) -> str:
    if message is None:
        return ""
    return "^".join(p for p in (message.value(message.msh, 9, 1), message.value(message.msh, 9, 2)) if p)[:30]


# Which HL7 element each field of the referral services came from, to name it when a service refuses it.
_FIELD_ELEMENT = {
    "first_name": ("PID", 5, 2),
    "last_name": ("PID", 5, 1),
    "birth_date": ("PID", 7, None),
    "email": ("PID", 13, 4),
    "phone": ("PID", 13, 1),
    "state": ("PID", 11, 4),
    "postal_code": ("PID", 11, 5),
    "reason": ("RF1", 10, None),
    "diagnosis_codes": ("DG1", 3, 1),
    "received_at": ("MSH", 7, None),
    "npi": ("PRD", 7, 1),
}


def _problem_from_validation(exc: ValidationError) -> Problem:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    name, messages = next(iter(errors.items()))
    segment, number, component = _FIELD_ELEMENT.get(name, ("", None, None))
    label = name.replace("_", " ")
    return Problem(
        f"{label}: {' '.join(messages)}" if name else " ".join(messages),
        segment=segment,
        field=number,
        component=component,
        code="102",
    )


def _receive(request: mapping.ReferralRequest):
    provider = _provider(request.provider)
    key = f"hl7:{request.header.sender}:{request.external_id}" if request.external_id else None
    return referral_receive(
        patient_data=request.patient,
        referring_provider=provider,
        reason=request.reason,
        diagnosis_codes=request.diagnosis_codes,
        urgency=request.urgency,
        received_at=request.header.sent_at,
        channel=Channel.HL7,
        notes=mapping.notes_text(request),
        idempotency_key=key[:200] if key else None,
        external_id=request.external_id,
        by_label=f"HL7 {request.header.sender or 'sender'}"[:150],
    )


def _current(provider: ReferringProvider) -> ReferringProvider:
    seen = set()
    while provider.merged_into_id and provider.pk not in seen:
        seen.add(provider.pk)
        provider = ReferringProvider.objects.get(pk=provider.merged_into_id)
    return provider


def _provider(ref: mapping.ProviderRef) -> ReferringProvider:
    if ref.npi:
        found = ReferringProvider.objects.filter(npi=ref.npi).first()
        if found is not None:
            return _current(found)
    else:
        same_name = list(
            ReferringProvider.objects.current().filter(
                npi="", last_name__iexact=ref.last_name, first_name__iexact=ref.first_name
            )[:2]
        )
        if len(same_name) == 1:
            return same_name[0]
    fields = {
        "npi": ref.npi,
        "first_name": ref.first_name,
        "last_name": ref.last_name,
        "middle_name": ref.middle_name,
        "name_prefix": ref.prefix,
        "name_suffix": ref.suffix,
        "credentials": ref.credentials,
        "phone": ref.phone,
        "fax": ref.fax,
        "notes": f"Created from an HL7 referral. Identifier at the sender: {ref.other_id}"
        if ref.other_id
        else "Created from an HL7 referral.",
    }
    try:
        return provider_create(source=Source.REFERRAL, **{k: v for k, v in fields.items() if v})
    except ValidationError as exc:
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        name, messages = next(iter(errors.items()))
        raise Problem(
            f"the referring provider cannot be added to the directory: {name.replace('_', ' ')}: {' '.join(messages)}",
            segment=ref.where.split("-")[0],
            field=int(ref.where.split("-")[1]) if "-" in ref.where else None,
            code="102",
        ) from None
