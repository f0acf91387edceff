"""Reading a referral out of a FHIR ServiceRequest and the resources around it (patient, requester, coverage,
supporting documents): our own rules on top of fhir.resources' structural checks.

What is taken, and from where:
- patient: ServiceRequest.subject -> Patient: name (official, else usual, else the first), birthDate (a full
  date: it is half of how patients are matched), gender, the first phone and email, the home (else first)
  address; Coverage from ServiceRequest.insurance -> payer, plan, member ID. The sender's MRN is not our MRN
  and is never used to match a patient (a foreign number could point at another person here).
- referring provider: ServiceRequest.requester -> Practitioner, or PractitionerRole (its own NPI, else its
  practitioner's), or a logical reference by identifier; matched by the http://hl7.org/fhir/sid/us-npi
  identifier only. No NPI, or one the directory does not hold: the request is queued for review.
- reason: what is asked (ServiceRequest.code) and why (reasonCode, reasonReference.display); ICD-10 codes
  in reasonCode become the referral's diagnosis codes. priority: routine, urgent, asap (-> stat), stat.
- dates: the referral is received now; authoredOn and occurrence[x] are kept in the notes.
- identity: the placer identifier (type PLAC, else the first) makes the idempotency key; without one, a hash
  of the ServiceRequest, the patient and the requester's NPI does, so a resent request finds its referral.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from refloop.directory.models import ReferringProvider
from refloop.interop.fhir.outcome import FhirError, Issue
from refloop.interop.fhir.references import Found, Resolver
from refloop.lib.icd10 import parse_icd10_list
from refloop.lib.npi import npi_problem
from refloop.lib.plain_sql import row_where
from refloop.referrals.models import Channel, Sex, Urgency
from refloop.referrals.uploads import sniff

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
ORDER_INTENTS = frozenset({"order", "original-order", "reflex-order", "filler-order", "instance-order"})
PRIORITY = {"routine": Urgency.ROUTINE, "urgent": Urgency.URGENT, "asap": Urgency.STAT, "stat": Urgency.STAT}
GENDER = {"female": Sex.FEMALE, "male": Sex.MALE, "other": Sex.OTHER, "unknown": Sex.UNKNOWN}
REQUESTER_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization"})
KEY_MAX = 200  # Referral.idempotency_key


@dataclass(frozen=True)
class Document:
    name: str
    content: bytes
    where: str


@dataclass
class Planned:
    """One referral to log: the referral_receive arguments, and what the requester was matched to."""

    where: str
    key: str
    kwargs: dict[str, Any]
    requester_npi: str = ""
    provider: ReferringProvider | None = None
    review: str = ""  # why a person must look at it before it becomes a referral ("" when matched)
    requester_sent: dict[str, str] = field(default_factory=dict)  # name and contacts as sent, when it waits
    documents: list[Document] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    patient_where: str = ""


def text_of(concept: object) -> str:
    if not isinstance(concept, dict):
        return ""
    if (concept.get("text") or "").strip():
        return concept["text"].strip()
    for coding in concept.get("coding") or []:
        if (coding.get("display") or "").strip():
            return coding["display"].strip()
    for coding in concept.get("coding") or []:
        if (coding.get("code") or "").strip():
            return coding["code"].strip()
    return ""


def _canonical(resource: dict | None) -> str:
    if not resource:
        return ""
    trimmed = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return json.dumps(trimmed, sort_keys=True, separators=(",", ":"))


def _parse_when(value: str) -> dt.datetime | dt.date | None:
    if not value:
        return None
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    if len(value) < 10:
        return None  # a year or a month: kept as text, never compared
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _in_future(value: str, now: dt.datetime) -> bool:
    parsed = _parse_when(value)
    if isinstance(parsed, dt.datetime):
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed)
        return parsed > now + dt.timedelta(minutes=5)
    if isinstance(parsed, dt.date):
        return parsed > (now + dt.timedelta(days=1)).date()  # a date written in a time zone ahead of ours
    return False


class Planner:
    """Reads each ServiceRequest; collects every problem before refusing, so one answer lists them all."""

    def __init__(self, resolver: Resolver, *, single_patient: Found | None = None, bundle_documents=()):
        self.resolver = resolver
        self.single_patient = single_patient  # a message Bundle is about one patient
        self.bundle_documents: list[Found] = list(bundle_documents)
        self.issues: list[Issue] = []
        self.now = timezone.now()

    def fail(self, where: str, text: str, code: str = "invalid") -> None:
        self.issues.append(Issue(where, text, code))

    def plan(self, sr: Found) -> Planned | None:
        res, where = sr.resource, sr.where
        before = len(self.issues)
        status, intent = res.get("status"), res.get("intent")
        if status != "active":
            self.fail(f"{where}.status", f"A referral is taken when its status is active, not {status!r}.", "value")
        if intent not in ORDER_INTENTS:
            self.fail(f"{where}.intent", f"A referral is an order (intent order or original-order), not {intent!r}.")
        priority = res.get("priority") or "routine"
        if priority not in PRIORITY:
            self.fail(f"{where}.priority", f"priority must be one of {', '.join(PRIORITY)}, not {priority!r}.")
        authored = res.get("authoredOn") or ""
        if authored and _in_future(authored, self.now):
            self.fail(f"{where}.authoredOn", f"authoredOn {authored} is in the future.", "value")
        reason, codes = self._reason(res, where)
        patient = self._patient(res, sr)
        requester_npi, review = self._requester(res, sr)
        if len(self.issues) > before:
            return None
        patient_data, patient_where = patient
        patient_data.update(self._coverage(res, sr))
        notes = self._notes(res)
        key = self._key(res, patient_data, requester_npi)
        provider = None
        if not review:
            provider = _provider_by_npi(requester_npi)
            if provider is None:
                review = f"no referring provider with NPI {requester_npi} in the directory"
        plan = Planned(
            where=where,
            key=key,
            requester_npi=requester_npi,
            provider=provider,
            review=review,
            requester_sent=self._requester_sent(res, sr) if review else {},
            patient_where=patient_where,
            kwargs={
                "patient_data": patient_data,
                "referring_provider": provider,
                "reason": reason[:2000],
                "diagnosis_codes": codes,
                "urgency": PRIORITY[priority],
                "channel": Channel.FHIR,
                "notes": notes,
                "idempotency_key": key,
                "external_id": self._placer(res)[1][:100],
            },
        )
        self._documents(res, sr, plan)
        return plan

    # what is asked, and why

    def _reason(self, res: dict, where: str) -> tuple[str, list[str]]:
        what = text_of(res.get("code"))
        why = [text_of(c) for c in res.get("reasonCode") or []]
        why += [(r.get("display") or "").strip() for r in res.get("reasonReference") or [] if isinstance(r, dict)]
        why = [w for w in why if w]
        reason = f"{what}: {'; '.join(why)}" if what and why else what or "; ".join(why)
        if not reason:
            self.fail(f"{where}.reasonCode", "Say what is asked or why: give code, reasonCode or reasonReference "
                      "with a text or display.", "required")  # fmt: skip
        codes: list[str] = []
        for i, concept in enumerate(res.get("reasonCode") or []):
            for j, coding in enumerate(concept.get("coding") or []):
                if coding.get("system") in ICD10_SYSTEMS and coding.get("code"):
                    try:
                        codes += parse_icd10_list([coding["code"]])
                    except ValueError as exc:
                        self.fail(f"{where}.reasonCode[{i}].coding[{j}].code", str(exc), "code-invalid")
        return reason, codes

    # the patient

    def _patient(self, res: dict, sr: Found) -> tuple[dict, str]:
        where = f"{sr.where}.subject"
        subject = res.get("subject")
        found = self.resolver.resolve(subject, sr, where)
        if (found is None or found.where.endswith(".identifier")) and self.single_patient is not None:
            found = self.single_patient
        if found is None or found.resource.get("resourceType") != "Patient":
            text = "The patient must be sent with the referral: a Patient contained in the ServiceRequest or in the "
            self.fail(where, text + "Bundle (a reference alone cannot be read here).", "not-found")
            return {}, ""
        patient, pw = found.resource, found.where
        if found.where.endswith(".identifier"):
            self.fail(where, "A patient given only by identifier cannot be matched: send the Patient resource "
                      "with name and birthDate.", "not-found")  # fmt: skip
            return {}, ""
        names = patient.get("name") or []
        name = next((n for use in ("official", "usual") for n in names if n.get("use") == use), None)
        name = name or (names[0] if names else {})
        index = names.index(name) if name in names else 0
        given = [g for g in name.get("given") or [] if g and g.strip()]
        if not (name.get("family") or "").strip():
            self.fail(f"{pw}.name[{index}].family", "The patient's family name is required.", "required")
        if not given:
            self.fail(f"{pw}.name[{index}].given", "The patient's given name is required.", "required")
        birth = patient.get("birthDate") or ""
        birth_date = None
        if len(birth) != 10:
            self.fail(f"{pw}.birthDate", "The patient's full date of birth (YYYY-MM-DD) is required to match "
                      "the patient.", "required")  # fmt: skip
        else:
            birth_date = dt.date.fromisoformat(birth)
            if birth_date > timezone.localdate():
                self.fail(f"{pw}.birthDate", f"birthDate {birth} is in the future.", "value")
        gender = patient.get("gender") or "unknown"
        if gender not in GENDER:
            self.fail(f"{pw}.gender", f"gender must be one of {', '.join(GENDER)}, not {gender!r}.", "value")
        data: dict[str, Any] = {
            "first_name": " ".join(given)[:100] if given else "",
            "last_name": (name.get("family") or "").strip()[:100],
            "birth_date": birth_date,
            "sex": GENDER.get(gender, Sex.UNKNOWN),
        }
        for point in [t for t in patient.get("telecom") or [] if t.get("use") != "old"]:
            system, value = point.get("system"), (point.get("value") or "").strip()
            if system == "phone" and value and "phone" not in data:
                data["phone"] = value[:40]
            elif system == "email" and value and "email" not in data:
                data["email"] = value[:254]
        addresses = [a for a in patient.get("address") or [] if a.get("use") != "old"]
        address = next((a for a in addresses if a.get("use") == "home"), addresses[0] if addresses else None)
        if address:
            lines = address.get("line") or []
            state = (address.get("state") or "").strip()
            data.update(
                {
                    "address_line1": (lines[0] if lines else "")[:200],
                    "address_line2": ", ".join(lines[1:])[:200],
                    "city": (address.get("city") or "")[:100],
                    "state": state.upper() if len(state) == 2 else "",
                    "postal_code": (address.get("postalCode") or "")[:10],
                }
            )
        language = next((text_of(c.get("language")) for c in patient.get("communication") or []), "")
        if language:
            data["preferred_language"] = language[:40]
        return data, pw

    def _coverage(self, res: dict, sr: Found) -> dict[str, str]:
        coverages = [self.resolver.resolve(r, sr) for r in res.get("insurance") or []]
        coverage = next((c.resource for c in coverages if c and c.resource.get("resourceType") == "Coverage"), None)
        if coverage is None:
            return {}
        payer = ""
        for payor in coverage.get("payor") or []:
            found = self.resolver.resolve(payor, sr)
            payer = (found.resource.get("name") if found else "") or payor.get("display") or ""
            if payer:
                break
        plan = ""
        for item in coverage.get("class") or []:
            if any(c.get("code") == "plan" for c in (item.get("type") or {}).get("coding") or []):
                plan = item.get("name") or item.get("value") or ""
        member = coverage.get("subscriberId") or next(
            (i.get("value") for i in coverage.get("identifier") or [] if i.get("value")), ""
        )
        return {"payer": payer[:120], "plan": plan[:120], "member_id": (member or "")[:60]}

    # the referring provider

    def _requester(self, res: dict, sr: Found) -> tuple[str, str]:
        """(NPI, "") when the requester has a valid NPI; ("", why) when it must be reviewed by a person."""
        where = f"{sr.where}.requester"
        reference = res.get("requester")
        if not reference:
            self.fail(where, "The referring provider (requester) is required.", "required")
            return "", ""
        found = self.resolver.resolve(reference, sr, where)
        if found is None:
            return "", f"the requester {reference.get('reference', '')!r} was not sent with the referral"
        kind = found.resource.get("resourceType")
        if found.where.endswith(".identifier") and kind not in REQUESTER_TYPES:
            kind = "Practitioner"  # a logical reference to an NPI without a type is read as a practitioner
        if kind not in REQUESTER_TYPES:
            self.fail(where, f"The requester of a referral is a Practitioner or PractitionerRole, not a {kind}.")
            return "", ""
        if kind == "Organization":
            return "", "the requester is an organization, not a referring provider"
        npi = self._npi(found)
        if npi is None:
            return "", ""
        if not npi and kind == "PractitionerRole":
            role_of = found.resource.get("practitioner")
            practitioner = self.resolver.resolve(role_of, found, f"{found.where}.practitioner")
            npi = self._npi(practitioner) if practitioner is not None else ""
            if npi is None:
                return "", ""
        if not npi:
            return "", "the requester has no NPI (http://hl7.org/fhir/sid/us-npi identifier)"
        return npi, ""

    def _requester_sent(self, res: dict, sr: Found) -> dict[str, str]:
        """The requester as the message describes them, for the person who must find or add them: first and last
        name (a Practitioner's name, the role's practitioner's for a PractitionerRole, else a reference's display)
        and the fax, phone and Direct address among their telecoms (the role's first)."""
        reference = res.get("requester")
        found = self.resolver.resolve(reference, sr)
        resources, displays = [], [reference.get("display") if isinstance(reference, dict) else ""]
        if found is not None:
            resources.append(found.resource)
            role_of = found.resource.get("practitioner")
            if isinstance(role_of, dict):
                displays.insert(0, role_of.get("display"))
                person = self.resolver.resolve(role_of, found)
                if person is not None:
                    resources.append(person.resource)
        sent: dict[str, str] = {}
        for resource in resources:
            for name in resource.get("name") or []:
                if "last_name" not in sent and isinstance(name, dict) and (name.get("family") or name.get("given")):
                    sent["first_name"] = " ".join(g for g in name.get("given") or [] if isinstance(g, str))
                    sent["last_name"] = name.get("family") or ""
            for point in resource.get("telecom") or []:
                if not isinstance(point, dict) or not isinstance(point.get("value"), str):
                    continue
                direct = any(x.get("url", "").endswith("us-core-direct") and x.get("valueBoolean")
                             for x in point.get("extension") or [] if isinstance(x, dict))  # fmt: skip
                kind = "direct_address" if direct else {"fax": "fax", "phone": "phone"}.get(point.get("system"))
                if kind:
                    sent.setdefault(kind, point["value"].strip())
        if "last_name" not in sent:
            for display in displays:
                words = display.split(",")[0].replace("Dr.", " ").split() if isinstance(display, str) else []
                if len(words) >= 2:
                    sent["first_name"], sent["last_name"] = " ".join(words[:-1]), words[-1]
                    break
        return {k: v[:100] for k, v in sent.items() if v}

    def _npi(self, found: Found) -> str | None:
        """The NPI of a Practitioner or PractitionerRole; "" when there is none, None when it is not valid."""
        for i, ident in enumerate(found.resource.get("identifier") or []):
            if ident.get("system") == NPI_SYSTEM:
                value = (ident.get("value") or "").strip()
                problem = npi_problem(value)
                if problem:
                    where = found.where if found.where.endswith(".identifier") else f"{found.where}.identifier[{i}]"
                    self.fail(f"{where}.value", f"NPI {value!r}: {problem}", "value")
                    return None
                return value
        return ""

    # identity, notes and documents

    def _placer(self, res: dict) -> tuple[str, str]:
        idents = [i for i in res.get("identifier") or [] if (i.get("value") or "").strip()]
        placer = next(
            (i for i in idents if any(c.get("code") == "PLAC" for c in (i.get("type") or {}).get("coding") or [])),
            idents[0] if idents else None,
        )
        if placer is None:
            return "", ""
        system = placer.get("system") or (placer.get("assigner") or {}).get("reference") or ""
        return system, placer["value"].strip()

    def _key(self, res: dict, patient_data: dict, npi: str) -> str:
        system, value = self._placer(res)
        if value:
            key = f"fhir:sr:{system or 'npi:' + npi}|{value}"
            if len(key) <= KEY_MAX:
                return key
        patient = json.dumps(patient_data, sort_keys=True, default=str)
        digest = hashlib.sha256(f"{_canonical(res)}\x1f{patient}\x1f{npi}".encode()).hexdigest()
        return f"fhir:sha256:{digest}"

    def _notes(self, res: dict) -> str:
        lines = []
        if res.get("authoredOn"):
            lines.append(f"Written by the referring provider on {res['authoredOn']}.")
        when = res.get("occurrenceDateTime") or (res.get("occurrencePeriod") or {}).get("start")
        if when:
            lines.append(f"Requested for {when}.")
        for note in res.get("note") or []:
            if (note.get("text") or "").strip():
                lines.append(note["text"].strip())
        return "\n".join(lines)[:4000]

    def _documents(self, res: dict, sr: Found, plan: Planned) -> None:
        wanted = [self.resolver.resolve(r, sr) for r in res.get("supportingInfo") or []]
        wanted = [w for w in wanted if w is not None]
        for found in self.bundle_documents:  # one referral in the Bundle: every document in it is its own
            if all(found is not w for w in wanted):
                wanted.append(found)
        for found in wanted:
            kind = found.resource.get("resourceType")
            if kind == "Binary":
                self._attachment(found.resource, found.where, plan, found.resource.get("id") or "document")
            elif kind == "DocumentReference":
                title = found.resource.get("description") or text_of(found.resource.get("type")) or "document"
                for i, content in enumerate(found.resource.get("content") or []):
                    attachment = content.get("attachment") or {}
                    self._attachment(attachment, f"{found.where}.content[{i}].attachment", plan, title)

    def _attachment(self, attachment: dict, where: str, plan: Planned, title: str) -> None:
        data = attachment.get("data")
        if not data:
            plan.warnings.append(Issue(where, "Only attachments sent inline (data) are kept; nothing is fetched "
                                       "from a url.", "not-supported", "warning"))  # fmt: skip
            return
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            self.fail(f"{where}.data", "The attachment's data is not valid base64.", "value")
            return
        if sniff(content[:16]) is None:
            kind = attachment.get("contentType") or "unknown"
            plan.warnings.append(Issue(where, f"A {kind} document is not kept: attachments are PDF, PNG, JPEG or "
                                       "TIFF.", "not-supported", "warning"))  # fmt: skip
            return
        name = (attachment.get("title") or title or "document").strip().replace("/", "-")[:150]
        plan.documents.append(Document(name, content, where))


def _provider_by_npi(npi: str) -> ReferringProvider | None:
    provider = _provider(npi=npi)
    hops = 0
    while provider is not None and provider.merged_into_id and hops < 10:  # a merged record leads to the kept one
        provider = _provider(pk=provider.merged_into_id)
        hops += 1
    return provider


def _provider(**unique) -> ReferringProvider | None:
    return row_where(ReferringProvider, **unique)  # every intake asks: plain SQL (lib/plain_sql.py)


def refuse_if(planner: Planner, status: int = 422) -> None:
    if planner.issues:
        raise FhirError(status, planner.issues)
