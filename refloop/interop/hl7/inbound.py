"""One inbound HL7 message: validated and queued by the listener (answered at once), made a referral by the worker.

Two halves, as an engine's "respond after source" / HL7 accept acknowledgment expects:

1. hl7_message_accept (the MLLP listener): the message is parsed and read in full (structure, required fields,
   formats, codes, the NPI's check digit, the patient's and new provider's fields as the models validate them),
   so everything that can be refused is refused here, with AE/AR and an ERR naming the segment and field. A good
   message is committed to InterfaceMessage with status "queued" and the AA it was answered with, in one INSERT:
   the unique index on (sender, MSH-10) recognises a resend, which gets the first answer again, byte for byte.
   Nothing else is written, so the listener costs about a millisecond of CPU per message and answers in a few.
2. inbound_drain (the `hl7_inbound_drain` task of `refloop worker`): queued messages are made referrals,
   several per transaction (oldest first; PostgreSQL workers claim them with SKIP LOCKED; the rollups are synced
   once per batch). Each becomes
   "accepted" with its referral. One that fails there (rare: everything the sender can fix was checked by the
   listener, and an unknown provider is created for review, as before) becomes "failed" with the reason in
   `detail`, in the same transaction; it keeps its payload, and `refloop hl7 requeue-failed` queues it again
   once the cause is fixed. A deadlock or a locked database runs the batch again; a message is never lost:
   it stays "queued" until a drain commits it accepted or failed.
   The listener queues a drain when it has taken messages (at most every KICK_SECONDS, and at its start when
   messages are waiting); the worker queues one at its start; a drain that runs out of time queues the next.

hl7_message_receive does both at once (the file ingestion and the tests): the ACK, and the referral made.

- A message that cannot be used creates nothing and is kept with the refusal, so the interface log shows what
  came in and why it was refused.
- A message without MSH-10 (the standard requires it; the HAPI REF^I12 example has none) is taken, but only the
  sender's own referral id (RF1-6, ORC-2) can then recognise a resend: it is the referral's idempotency key (the
  listener answers "already received" when that referral exists, the worker makes it once in any case).

Referring providers: matched by NPI (PRD-7, or ORC-12/OBR-16 with the NPI assigning authority or identifier
type). An NPI not in the directory creates the provider (source "Created from a referral"), as the intake
form's "new provider" does; an NPI that fails its check digit is refused with AE naming the field. A provider
sent without an NPI (a local id, as in both reference messages) is matched by name among the directory's
providers that have no NPI either, else created without one: the directory's duplicate finder and merge
bring such a record together with the real one later, and the sender's identifier is kept in its notes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.models import F

from refloop.accounts.audit import audit_deferred, audit_flush, audit_record
from refloop.directory.models import ReferringProvider, Source
from refloop.directory.services import provider_create
from refloop.insights.rollups import rollups_deferred
from refloop.interop.hl7 import mapping
from refloop.interop.hl7.ack import ack_code_of, ack_for
from refloop.interop.hl7.parse import Message, charset_of, parse
from refloop.interop.hl7.problems import INTERNAL_ERROR, Problem
from refloop.interop.models import InterfaceMessage
from refloop.referrals.models import Channel, Patient, Referral
from refloop.referrals.services import PATIENT_FIELDS, referral_receive

log = logging.getLogger(__name__)
Status = InterfaceMessage.Status
TRIES = 3  # a batch that meets a deadlock or a locked database is run again this many times in all
BATCH = 50  # messages claimed per worker transaction, at most
# A batch is sized to take about this long: on SQLite the transaction holds the one write lock, which the
# listener's INSERTs wait for (their ACK latency); on PostgreSQL it holds only the audit chain's lock.
BATCH_SECONDS = {"sqlite": 0.04, "postgresql": 0.5}
DRAIN_SECONDS = 30  # one drain task runs this long at most, then queues the next (other tasks get their turn)
SQLITE_PAUSE = 0.06  # seconds the SQLite worker leaves the write lock free between batches while messages come
KICK_SECONDS = 0.2  # the listener checks that a drain is queued at most this often while it takes messages


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


def _inbound():
    return InterfaceMessage.objects.filter(
        direction=InterfaceMessage.Direction.INBOUND, protocol=InterfaceMessage.Protocol.HL7V2
    )


def hl7_message_accept(*, raw: bytes, via: str = "mllp") -> Answer:
    """The listener's half: validate the message, recognise a resend, queue it; return the ACK to send back."""
    text = raw.decode("iso8859-1")  # what is stored when even the character set cannot be read
    try:
        message = parse(raw)
        text = message.text
        header = mapping.read_header(message)
    except Problem as problem:
        message = _parsed_or_none(raw)
        return _record_refusal(message, problem, text, via)
    fields = {
        "direction": InterfaceMessage.Direction.INBOUND,
        "protocol": InterfaceMessage.Protocol.HL7V2,
        "message_type": header.message_type,
        "control_id": header.control_id,
        "sender": header.sender,
        "payload": text,
        "attempts": 1,
    }
    try:
        request = mapping.read_referral(message)
        _check_fields(request)
    except Problem as problem:
        return _refused(message, header, fields, problem, via)
    except ValidationError as exc:
        return _refused(message, header, fields, _problem_from_validation(exc), via)
    if not header.control_id and request.external_id:
        # No MSH-10: the sender's referral id is the only way to recognise a resend.
        earlier = Referral.objects.filter(idempotency_key=_key(request)).values_list("pk", flat=True).first()
        if earlier is not None:
            ack = ack_for(message, code="AA", text=f"already received as referral {earlier}")
            detail = f"referral #{earlier} already received (same id); by {via}"
            row = InterfaceMessage.objects.create(
                **fields, status=Status.ACCEPTED, referral_id=earlier, response=ack, detail=detail
            )
            return Answer(ack, "AA", row)
    ack = ack_for(message, code="AA")
    try:
        with transaction.atomic():  # one INSERT, committed (durable) before the AA goes out
            row = InterfaceMessage.objects.create(
                **fields, status=Status.QUEUED, response=ack, detail=f"queued; received by {via}"
            )
    except IntegrityError:  # the same sender and MSH-10 again (a resend, or a copy on another connection)
        existing = _earlier(header)
        if existing is None:
            raise
        return _repeat(existing)
    return Answer(ack, "AA", row)


def hl7_message_receive(*, raw: bytes, via: str = "file") -> Answer:
    """Both halves at once: the ACK, and (when queued) the referral made in this process before returning.

    The Answer's code is the ACK's; when the referral step then fails, the message row says "failed" (check
    `answer.message.status`)."""
    answer = hl7_message_accept(raw=raw, via=via)
    if answer.message is None or answer.duplicate or answer.message.status != Status.QUEUED:
        return answer
    inbound_process([answer.message.pk])
    row = InterfaceMessage.objects.select_related("referral").get(pk=answer.message.pk)
    return Answer(answer.ack, answer.code, row, referral=row.referral)


def _check_fields(request: mapping.ReferralRequest) -> None:
    """The model validation of what the worker will write, done here (no database) so that it is answered AE."""
    patient = Patient(**{k: v for k, v in request.patient.items() if k in PATIENT_FIELDS and v is not None})
    patient.clean_fields(exclude=[f.name for f in Patient._meta.fields if f.name not in request.patient])
    ref = request.provider
    fields = _provider_fields(ref)
    try:
        ReferringProvider(**fields).clean_fields(
            exclude=[f.name for f in ReferringProvider._meta.fields if f.name not in fields]
        )
    except ValidationError as exc:
        raise _provider_problem(ref, exc) from None


def _key(request: mapping.ReferralRequest) -> str | None:
    key = f"hl7:{request.header.sender}:{request.external_id}" if request.external_id else None
    return key[:200] if key else None


# The worker's half --------------------------------------------------------------------------------------------
def inbound_kick() -> bool:
    """Queue a drain unless one is waiting to run already. True if queued now."""
    from django_tasks_db.models import DBTaskResult

    from refloop.interop.hl7.tasks import hl7_inbound_drain

    if DBTaskResult.objects.ready().filter(task_path=hl7_inbound_drain.module_path).exists():
        return False
    hl7_inbound_drain.enqueue()
    return True


def inbound_kick_if_waiting() -> bool:
    """At a listener's or worker's start: queue a drain when messages are waiting (left by a stop or a crash)."""
    if _inbound().filter(status=Status.QUEUED).exists():
        return inbound_kick()
    return False


class Kicker:
    """The listener's drain trigger: `poke()` after each queued message; a thread makes sure, at most every
    KICK_SECONDS and always after the last poke, that a drain task is waiting for the worker. At its start it
    queues one if messages are waiting (left by a listener that stopped between its commit and its kick)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.poked = False
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="hl7-drain-kicker", daemon=True)
        self.thread.start()

    def poke(self) -> None:
        self.poked = True
        self.event.set()

    def stop(self) -> None:
        """Stop the thread, after a last kick if messages were queued since the previous one."""
        self.stopping = True
        self.event.set()
        self.thread.join(10)

    def _run(self) -> None:
        kick = inbound_kick_if_waiting
        while True:
            try:
                kick()
            except Exception:  # the database is away: the next poke, or the worker's start, queues it
                log.exception("could not queue the HL7 inbound drain")
            finally:
                connections.close_all()  # this thread's connection: one query every KICK_SECONDS at most
            if self.stopping:
                return
            time.sleep(KICK_SECONDS)
            self.event.wait()
            self.event.clear()
            if self.stopping and not self.poked:
                return
            self.poked = False
            kick = inbound_kick


def inbound_drain(*, seconds: float = DRAIN_SECONDS) -> str:
    """Make referrals of the queued messages, batch after batch, until none is left or `seconds` have passed."""
    started = time.monotonic()
    accepted = failed = 0
    newest = _newest()
    while True:
        done, bad = _drain_batch()
        accepted, failed = accepted + done, failed + bad
        if done + bad == 0:
            break
        if time.monotonic() - started > seconds:
            inbound_kick()  # more may be waiting: the next drain takes them after the worker's other tasks
            break
        if connection.vendor == "sqlite":
            # SQLite has one write lock, and a writer waiting for it polls (1, 2, 5, 10, 15 ms...): a worker that
            # begins its next batch at once takes it again and again, and the listener's INSERTs (the ACKs) wait
            # behind the whole drain. While messages are still arriving, leave the lock free between batches.
            latest = _newest()
            if latest != newest:
                newest = latest
                time.sleep(SQLITE_PAUSE)
    return f"{accepted} referral message(s) accepted, {failed} failed"


def _newest() -> int | None:
    return _inbound().order_by("-pk").values_list("pk", flat=True).first()


def inbound_process(ids: list[int]) -> tuple[int, int]:
    """Process these queued messages now (in one transaction): (accepted, failed)."""
    return _drain_batch(ids)


_per_message = [0.02]  # seconds one message has been taking in this process (a moving average)


def _drain_batch(ids: list[int] | None = None) -> tuple[int, int]:
    # As many messages as fit in the batch's time, from what they have been taking (at least one).
    size = max(1, min(BATCH, int(BATCH_SECONDS.get(connection.vendor, 0.5) / _per_message[0])))
    for attempt in range(1, TRIES + 1):
        try:
            # The batch's referrals are queued for the rollups at its end (folded in by the next reader or the
            # worker's catch-up), and the audit events appended after: the chain's lock is held for the batch's
            # last statements only (accounts/audit.py), so the web and FHIR intakes do not wait for the whole batch.
            with transaction.atomic(), audit_deferred(), rollups_deferred(before_writes=audit_flush):
                queued = _inbound().filter(status=Status.QUEUED)
                if ids is not None:
                    queued = queued.filter(pk__in=ids)
                rows = list(queued.select_for_update(skip_locked=True).order_by("pk")[:size])
                started = time.monotonic()
                done = bad = 0
                for row in rows:
                    if _process(row):
                        done += 1
                    else:
                        bad += 1
            if rows:
                _per_message[0] = 0.8 * _per_message[0] + 0.2 * (time.monotonic() - started) / len(rows)
            return done, bad
        except OperationalError as exc:  # a deadlock or a locked database: the whole batch again
            if attempt == TRIES:
                raise
            log.warning("HL7 inbound batch: %s; trying again", type(exc.__cause__ or exc).__name__)
    return 0, 0


def _reparse(text: str) -> Message:
    message = parse(text)
    with contextlib.suppress(Problem):  # the codec of MSH-18, for \X..\ escapes (the listener read it already)
        message.codec = charset_of(text.split("\r", 1)[0].encode("ascii", "replace"))[1]
    return message


def _process(row: InterfaceMessage) -> bool:
    """One queued message made a referral (True), or marked failed with the reason (False)."""
    via = row.detail.removeprefix("queued; received by ")
    try:
        # a savepoint: a failure undoes this message only, and drops the audit events it kept
        with transaction.atomic(), audit_deferred():
            request = mapping.read_referral(_reparse(row.payload))
            audit_record(
                actor=None,
                actor_label=f"HL7 {row.sender or 'sender'}"[:150],
                action="interop.hl7.receive",
                detail={"type": row.message_type, "control_id": row.control_id, "via": via},
            )
            received = _receive(request)
    except OperationalError:
        raise
    except Problem as problem:
        reason = str(problem)
    except ValidationError as exc:
        reason = str(_problem_from_validation(exc))
    except Exception as exc:  # a bug: the reason names the error's type only (its text may hold PHI)
        log.exception("HL7 message %s could not be made a referral", row.pk)
        reason = f"refloop could not process it ({type(exc).__name__}); see the worker's log"
    else:
        referral = received.referral
        row.status = Status.ACCEPTED
        row.referral = referral
        row.detail = (
            f"referral #{referral.pk} "
            + ("created" if received.created else "already received (same id)")
            + f"; received by {via}"
        )
        row.save(update_fields=["status", "referral", "detail", "updated_at"])
        return True
    row.status = Status.FAILED
    row.detail = f"Answered AA, then not made a referral: {reason} (received by {via})"[:4000]
    row.save(update_fields=["status", "detail", "updated_at"])
    return False


def inbound_requeue_failed(ids: list[int] | None = None) -> int:
    """Queue the failed inbound messages again (after the cause was fixed), or those of `ids` that failed. The
    number queued."""
    failed = _inbound().filter(status=Status.FAILED)
    rows = list((failed if ids is None else failed.filter(pk__in=ids)).values_list("pk", "detail"))
    for pk, detail in rows:
        via = detail.rsplit("(received by ", 1)[-1].rstrip(")") if "(received by " in detail else "requeue"
        _inbound().filter(pk=pk, status=Status.FAILED).update(status=Status.QUEUED, detail=f"queued; received by {via}")
    if rows:
        inbound_kick()
    return len(rows)


def _refused(
    message: Message, header: mapping.Header, fields: dict, problem: Problem, via: str, status: str = Status.REJECTED
) -> Answer:
    """Keep the refused message with its answer (nothing else was written: the transaction was rolled back)."""
    ack = ack_for(message, code=problem.ack_code, problem=problem)
    try:
        with transaction.atomic():
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
    return referral_receive(
        patient_data=request.patient,
        referring_provider=provider,
        reason=request.reason,
        diagnosis_codes=request.diagnosis_codes,
        urgency=request.urgency,
        received_at=request.header.sent_at,
        channel=Channel.HL7,
        notes=mapping.notes_text(request),
        idempotency_key=_key(request),
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
    fields = _provider_fields(ref)
    try:
        return provider_create(source=Source.REFERRAL, **fields)
    except ValidationError as exc:
        raise _provider_problem(ref, exc) from None


def _provider_fields(ref: mapping.ProviderRef) -> dict:
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
    return {k: v for k, v in fields.items() if v}


def _provider_problem(ref: mapping.ProviderRef, exc: ValidationError) -> Problem:
    errors = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    name, messages = next(iter(errors.items()))
    return Problem(
        f"the referring provider cannot be added to the directory: {name.replace('_', ' ')}: {' '.join(messages)}",
        segment=ref.where.split("-")[0],
        field=int(ref.where.split("-")[1]) if "-" in ref.where else None,
        code="102",
    )
